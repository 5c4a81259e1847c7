"""The build's stages (DESIGN.md §13): each a function reading and writing the ``BuildState``,
ordered and timed by ``packager.pipeline.build``."""
