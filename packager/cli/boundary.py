"""The CLI's one error boundary: MpackError (and only that) becomes `error:`/`hint:` lines and exit
code 1 (2 for usage errors, from click); tracebacks only with --debug."""

from __future__ import annotations

import json

import typer
from mpack.infra.errors import MpackError
from rich.console import Console
from rich.markup import escape

stderr = Console(stderr=True, highlight=False)


class error_boundary:
    """Turns MpackError (and only that) into a clean message and exit code 1."""

    def __init__(self, as_json: bool, debug: bool) -> None:
        self.as_json, self.debug = as_json, debug

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or not isinstance(error, MpackError) or self.debug:
            return False
        if self.as_json:
            print(json.dumps({"ok": False, "error": error.message, "hint": error.hint}))
        stderr.print(f"[red]error:[/red] {escape(error.message)}", soft_wrap=True)
        if error.hint:
            stderr.print(f"[cyan]hint:[/cyan] {escape(error.hint)}", soft_wrap=True)
        raise typer.Exit(1)
