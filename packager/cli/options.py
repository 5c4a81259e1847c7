"""Options shared by more than one command (the local platform's and the deployer's)."""

from __future__ import annotations

import typer

MEMORY_OPTION = typer.Option(1024, "--memory", help="Memory size in MB (128-10240): enforced, and it sets the CPU share the model uses.")
TIMEOUT_OPTION = typer.Option(3.0, "--timeout", help="Function timeout in seconds (1-900), as on Lambda.")
ENV_OPTION = typer.Option([], "--env", help="KEY=VALUE for the function's environment (repeatable).")
HANDLER_OPTION = typer.Option(None, "--handler", help="MODULE.FUNCTION [default: from the bundle's mpack.json].")
NAME_OPTION = typer.Option(None, "--name", help="Function name [default: the model's name].")
CACHE_OPTION = typer.Option(None, "--cache-dir", envvar="MPACK_CACHE_DIR", help="Cache for unpacked bundles and the runtime client [default: ~/.cache/mpack].")
SNAPSTART_OPTION = typer.Option(
    False, "--snapstart", help="Run SnapStart's phases: init for a snapshot (before-snapshot hooks), restore (after-restore hooks), then invoke; REPORT shows the Restore Duration."
)
BASE_IMAGE_OPTION = typer.Option(
    None,
    "--base-image",
    help="A bundle built for another Python than this machine's runs in a container of that Python: its image [default: mpack/python:<py>-<debian release>, from mpack base-image].",
)
