"""The `mpack` command line. One error boundary: MpackError becomes `error:`/`hint:` lines and
exit code 1 (2 for usage errors, from click); tracebacks only with --debug."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from .errors import MpackError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Package ML models as small, fast serverless bundles.")
_stderr = Console(stderr=True, highlight=False)


@app.callback()
def _root() -> None:
    """mpack: MLflow models to AWS Lambda (and more), tested locally before they ship."""


@app.command()
def build(
    model: str = typer.Option(..., "--model", "-m", help="models:/NAME@ALIAS, models:/NAME/VERSION|STAGE, runs:/RUN_ID/PATH, a model folder or a .onnx file."),
    target: str = typer.Option("lambda", "--target", "-t", help="What to build (lambda)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the bundle [default: dist/<model>-<version>-<target>.zip]."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking store."),
    registry_uri: Optional[str] = typer.Option(None, "--registry-uri", envvar="MLFLOW_REGISTRY_URI", help="MLflow model registry [default: the tracking store]."),
    python: Optional[str] = typer.Option(None, "--python", help="Target Python: 3.11, 3.12 or 3.13 [default: this interpreter's]."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Target architecture: x86_64 or arm64 [default: this machine's]."),
    tolerance: float = typer.Option(1e-5, "--tolerance", help="Largest accepted difference between the original and the converted model."),
    sample_data: Optional[Path] = typer.Option(None, "--sample-data", help="CSV or JSON rows for the parity check [default: the model's input example]."),
    lambda_http: str = typer.Option("native", "--lambda-http", help="HTTP events: native (fastest) or asgi (through Mangum, same app as containers)."),
    trust_type: list[str] = typer.Option([], "--trust-type", help="A type to allow when loading a skops model file (repeatable)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="MPACK_CACHE_DIR", help="Cache for runtime wheels [default: ~/.cache/mpack]."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Run the finished bundle on the input example in a fresh interpreter."),
    as_json: bool = typer.Option(False, "--json", help="Print one machine-readable build report on stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Build a deployable bundle from a model."""
    from .pipeline import BuildOptions, build as run_build
    from .progress import RichProgress

    options = BuildOptions(
        model=model,
        target=target,
        output=output,
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        python=python,
        arch=arch,
        tolerance=tolerance,
        sample_data=sample_data,
        lambda_http=lambda_http,
        trusted_types=tuple(trust_type),
        cache_dir=cache_dir,
        verify=verify,
    )
    with _error_boundary(as_json, debug):
        report = run_build(options, RichProgress(_stderr))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_summary(report)


def _print_summary(report) -> None:
    mib = 2**20
    _stderr.print(f"\n[bold]{report.artifact}[/bold]  {report.zipped_bytes / mib:.1f} MB zipped, {report.unzipped_bytes / mib:.1f} MB unzipped")
    _stderr.print(f"  handler {report.handler}   sha256 {report.sha256[:16]}…")
    for part in report.contributors:
        _stderr.print(f"  {part['name']:<28} {part['unzipped'] / mib:7.1f} MB  ({part['zipped'] / mib:.1f} MB zipped)")


class _error_boundary:
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
        _stderr.print(f"[red]error:[/red] {escape(error.message)}", soft_wrap=True)
        if error.hint:
            _stderr.print(f"[cyan]hint:[/cyan] {escape(error.hint)}", soft_wrap=True)
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _stderr.print("[red]interrupted[/red]")
        sys.exit(130)


if __name__ == "__main__":
    main()
