"""Run the finished bundle the way Lambda will, before anyone deploys it.

The zip is unpacked into a temporary folder and imported by a fresh ``python -I -S`` (no
site-packages, no user paths: only the bundle and the standard library), which answers the input
example through the real handler. A module missing from the bundle fails the build here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpack.infra.errors import MpackError

VERIFY_TIMEOUT_S = 120
_RUNNER = r"""
import json, sys, time
started = time.perf_counter()
bundle, request_file, answer_file = sys.argv[1:4]  # events in, answers out
sys.path.insert(0, bundle)

class Context:
    function_name = "mpack-verify"
    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:mpack-verify"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/mpack-verify"
    log_stream_name = "verify"
    def get_remaining_time_in_millis(self):
        return 60000

import mpack_handler
loaded = time.perf_counter()
answers, first = [], None
for event in json.load(open(request_file)):
    answers.append(mpack_handler.handler(event, Context()))
    if len(answers) == 1:
        first = time.perf_counter() - loaded
json.dump({"answers": answers, "init_s": loaded - started, "invoke_s": first, "modules": sorted(sys.modules)}, open(answer_file, "w"))
"""


@dataclass(frozen=True)
class Verification:
    ran: bool
    reason: str  # why it was skipped, or "ok"
    init_seconds: float | None = None
    max_abs_diff: float | None = None

    def to_dict(self) -> dict:
        return {"ran": self.ran, "reason": self.reason, "init_seconds": self.init_seconds, "max_abs_diff": self.max_abs_diff}


FORBIDDEN_AT_RUNTIME = ("pandas", "sklearn", "mlflow", "scipy")
ASGI_STACK = ("asyncio", "starlette", "mangum")  # also forbidden on the default (native) HTTP path


def run_isolated(bundle: Path, events: list, env: dict | None = None, timeout: float = VERIFY_TIMEOUT_S) -> dict:
    """Answer ``events`` in turn with the bundle's handler in one fresh ``python -I -S``.

    ``bundle`` is a zip or an unpacked folder. Returns the answers, the init and first-invoke
    times, the modules imported and what the function printed (its log lines and EMF metrics)."""
    with tempfile.TemporaryDirectory(prefix="mpack-run-") as folder:
        if bundle.is_dir():
            root = bundle
        else:
            root = Path(folder) / "bundle"
            with zipfile.ZipFile(bundle) as archive:
                archive.extractall(root)
        request_file, answer_file = Path(folder) / "events.json", Path(folder) / "answers.json"
        request_file.write_text(json.dumps(events))
        environment = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "POWERTOOLS_METRICS_NAMESPACE": "mpack-verify", "LANG": "C.UTF-8", **(env or {})}
        command = [sys.executable, "-I", "-S", "-c", _RUNNER, str(root), str(request_file), str(answer_file)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=folder)
        except subprocess.TimeoutExpired:
            raise MpackError(f"the bundle did not answer within {timeout:.0f} s", "run it with --debug to see where it hangs") from None
        if result.returncode != 0:
            last = [line for line in result.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
            raise MpackError(
                f"the built bundle fails when run on its own: {last[0][:300]}",
                "a module it needs is missing or broken; rerun with --debug, or report this with the output of --json",
            )
        return dict(json.loads(answer_file.read_text()), stdout=result.stdout)


def verify_bundle(zip_path: Path, request: dict, expected, tolerance: float, forbidden: tuple[str, ...] = FORBIDDEN_AT_RUNTIME) -> Verification:
    outcome = run_isolated(zip_path, [request])
    predictions = predictions_of(outcome["answers"][0], "the built bundle", "check the model's input example against its signature")
    loaded = [m for m in forbidden if m in outcome["modules"]]
    if loaded:
        raise MpackError(f"the bundle imported {', '.join(loaded)} at run time", "this is an mpack bug: the runtime must stay light")
    diff = agreement(predictions, expected, tolerance, "the bundle's answer", "the runtime's onnxruntime version computes differently; try another --python")
    return Verification(True, "ok", round(outcome["init_s"], 4), diff)


def predictions_of(answer, subject: str, hint: str):
    """The predictions of a verification run's answer; an error answer stops the build."""
    if not isinstance(answer, dict) or "predictions" not in answer:
        raise MpackError(f"{subject} answered the input example with an error: {json.dumps(answer)[:300]}", hint)
    return answer["predictions"]


def agreement(got, expected, tolerance: float, subject: str, hint: str) -> float:
    """The largest difference from the converted model's answer; over ``tolerance`` stops the build."""
    diff = _max_difference(got, expected)
    if diff is None or diff > tolerance:
        raise MpackError(f"{subject} differs from the converted model's (max difference {diff})", hint)
    return diff


def _max_difference(got, expected) -> float | None:
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return None
        diffs = [_max_difference(got[k], expected[k]) for k in expected]
        return None if None in diffs else max(diffs, default=0.0)
    a, b = np.asarray(got), np.asarray(expected)
    if a.shape != b.shape:
        return None
    if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
        return float(np.max(np.abs(a.astype(float) - b.astype(float)), initial=0.0))
    return 0.0 if np.array_equal(a, b) else None


def skipped(reason: str) -> Verification:
    return Verification(False, reason)
