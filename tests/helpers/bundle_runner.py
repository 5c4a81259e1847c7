"""Run a built bundle the way Lambda would, through mpack's own isolated runner: a fresh
`python -I -S` with only the unzipped bundle on the path, answering a list of events."""

from __future__ import annotations

import zipfile
from pathlib import Path

from mpack.packager.check.verify import run_isolated


def unzip(bundle: Path, folder: Path) -> Path:
    target = folder / bundle.stem
    if not target.exists():
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(target)
    return target


def run_events(bundle_dir: Path, events: list, env: dict | None = None) -> tuple[list, list, str]:
    """(answers, imported module names, stdout) of the handler answering each event in turn."""
    outcome = run_isolated(bundle_dir, events, {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", **(env or {})})
    return outcome["answers"], outcome["modules"], outcome["stdout"]
