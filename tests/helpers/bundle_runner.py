"""Run a built bundle the way Lambda would: a fresh `python -I -S` with only the unzipped bundle
on the path, answering a list of events through the real handler."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

RUNNER = r"""
import json, sys
bundle, events_file, results_file = sys.argv[1:4]
sys.path.insert(0, bundle)

class Context:
    function_name = "tests"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:tests"
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    log_group_name = "/aws/lambda/tests"
    log_stream_name = "tests"
    def get_remaining_time_in_millis(self):
        return 30000

import mpack_handler
results = []
for event in json.load(open(events_file)):
    results.append(mpack_handler.handler(event, Context()))
json.dump({"results": results, "modules": sorted(sys.modules)}, open(results_file, "w"))
"""


def unzip(bundle: Path, folder: Path) -> Path:
    target = folder / bundle.stem
    if not target.exists():
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(target)
    return target


def run_events(bundle_dir: Path, events: list, env: dict | None = None) -> tuple[list, list, str]:
    """(results, imported module names, stdout) of the handler answering each event in turn."""
    work = bundle_dir.parent
    events_file, results_file = work / "events.json", work / "results.json"
    events_file.write_text(json.dumps(events))
    results_file.unlink(missing_ok=True)
    process = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(bundle_dir), str(events_file), str(results_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", **(env or {})},
        cwd=work,
    )
    if process.returncode != 0:
        raise AssertionError(f"bundle process failed ({process.returncode}):\n{process.stderr[-3000:]}")
    outcome = json.loads(results_file.read_text())
    return outcome["results"], outcome["modules"], process.stdout
