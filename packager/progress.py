"""The build's progress display: one line per stage with its time, details beneath, on stderr
(stdout stays free for --json)."""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

STAGE_TITLES = {
    "resolve": "Resolving model",
    "convert": "Converting to ONNX",
    "prepare": "Preparing each runtime's candidates",
    "parity": "Checking parity",
    "dependencies": "Resolving runtime dependencies",
    "runtime": "Choosing the runtime and precision (measured)",
    "manifest": "Writing the manifest",
    "zip": "Writing bundle",
    "image": "Building image",
    "verify": "Verifying: answering the input example",
    "publish": "Publishing the bundle",
    "push": "Pushing the image",
}


class RichProgress:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)

    @contextmanager
    def stage(self, name: str):
        title = STAGE_TITLES.get(name, name)
        started = time.perf_counter()
        try:
            with self.console.status(f"{title}..."):
                yield
        except BaseException:
            self.console.print(f"[red]✗[/red] {title}")
            raise
        self.console.print(f"[green]✓[/green] {title} [dim]({time.perf_counter() - started:.1f} s)[/dim]")

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{escape(text)}[/dim]", soft_wrap=True)

    def warn(self, text: str) -> None:
        self.console.print(f"  [yellow]warning:[/yellow] {escape(text)}", soft_wrap=True)
