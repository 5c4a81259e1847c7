"""Run the real `mpack` command line in a subprocess, and check its clean-error contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def mpack(*args: str, store=None, cwd: Path | None = None, env: dict | None = None, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    if store is not None:
        environment["MLFLOW_TRACKING_URI"] = store.uri
    return subprocess.run([sys.executable, "-m", "mpack.packager.cli", *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout, input=stdin if stdin is not None else "")


def assert_clean_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    own_output = result.stderr.rsplit("\nREPORT RequestId", 1)[-1]  # a function's log may hold its own traceback
    assert "Traceback" not in own_output
    assert "error:" in result.stderr and "hint:" in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def sync_report(result: subprocess.CompletedProcess) -> dict:
    """The first release's outcome from `mpack sync --json` (the whole report when it is an error object)."""
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"no JSON report: {result.stdout[-2000:]}\n{result.stderr[-4000:]}") from None
    return report["releases"][0] if "releases" in report else report
