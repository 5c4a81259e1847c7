"""The command line: one typer app (``app``), one module per command group, one error boundary."""
