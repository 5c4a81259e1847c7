"""The `mpack` command line: one typer app; each command group lives in its own module
(build_commands, local_commands, deploy_commands) and errors pass one boundary (boundary.py)."""

from __future__ import annotations

import sys

import click
import typer
from mpack.packager.cli import build_commands, deploy_commands, local_commands, sync_commands
from mpack.packager.cli.boundary import stderr
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup


def _literal_help(command: click.Command) -> None:
    """Help text is prose, not rich markup: "[default: ...]" and "[tool.mpack]" must show as written
    (typer renders help as markup, which would swallow them)."""
    for holder in (command, *command.params):
        for name in ("help", "short_help"):
            text = getattr(holder, name, None)
            if text:
                setattr(holder, name, escape(text))


class LiteralHelpCommand(TyperCommand):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self)


class LiteralHelpGroup(TyperGroup):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self)


app = typer.Typer(cls=LiteralHelpGroup, add_completion=False, no_args_is_help=True, help="Package ML models as small, fast serverless bundles.")


@app.callback()
def _root() -> None:
    """mpack: MLflow models to AWS Lambda (and more), tested locally before they ship."""


COMMANDS = {
    "build": build_commands.build,
    "base-image": build_commands.base_image_command,
    "invoke": local_commands.invoke,
    "serve": local_commands.serve,
    "deploy": deploy_commands.deploy,
    "promote": deploy_commands.promote,
    "rollback": deploy_commands.rollback,
    "export": deploy_commands.export_command,
    "sync": sync_commands.sync,
}
for _name, _function in COMMANDS.items():
    app.command(_name, cls=LiteralHelpCommand)(_function)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        stderr.print("[red]interrupted[/red]")
        sys.exit(130)


if __name__ == "__main__":
    main()
