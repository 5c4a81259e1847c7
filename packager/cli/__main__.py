"""``python -m mpack.packager.cli``: the same entry point as the ``mpack`` command."""

from mpack.packager.cli.app import main

main()
