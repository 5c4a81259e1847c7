"""The `mpack` command line: one typer app; each command group lives in its own module
(build_commands, local_commands, deploy_commands) and errors pass one boundary (boundary.py)."""

from __future__ import annotations

import sys

import typer
from mpack.packager.cli import build_commands, deploy_commands, local_commands
from mpack.packager.cli.boundary import stderr

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Package ML models as small, fast serverless bundles.")


@app.callback()
def _root() -> None:
    """mpack: MLflow models to AWS Lambda (and more), tested locally before they ship."""


app.command()(build_commands.build)
app.command("base-image")(build_commands.base_image_command)
app.command()(local_commands.invoke)
app.command()(local_commands.serve)
app.command()(deploy_commands.deploy)
app.command()(deploy_commands.promote)
app.command()(deploy_commands.rollback)
app.command("export")(deploy_commands.export_command)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("[red]interrupted[/red]")
        sys.exit(130)


if __name__ == "__main__":
    main()
