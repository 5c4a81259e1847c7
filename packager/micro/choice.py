"""``--runtime auto`` on Lambda zips: measure the compiled model against onnxruntime (warm in this
process, cold in fresh processes of the bundle's Python) and say whether micro wins
(the stage that weighs them is packager/stages/choose.py).

``auto`` picks micro when every operator compiles, the compiled model passes the same parity gate
as the ONNX graph, and it answers the input example warm within ``WARM_BOUND_MS``: Lambda bills
whole milliseconds, so a warm request below one costs what the onnxruntime bundle's costs, while
the cold start drops from ONNX Runtime's import and session (~150 ms) to the interpreter's (~20 ms).
Both runtimes' measured cold start and warm latency (1 and 1,000 rows) go into the build report.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mpack.infra.errors import MpackError

WARM_BOUND_MS = 1.0
COLD_RUNS = 3
_COLD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
class Context:
    function_name = "mpack-measure"; function_version = "$LATEST"; memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:mpack-measure"; aws_request_id = "measure"
import mpack_handler
answer = mpack_handler.handler(json.loads(sys.argv[2]), Context())
assert "predictions" in answer, answer
"""


def warm_latencies(services: list, request: dict) -> list[dict]:
    """p50 of answering one row and 1,000 rows of ``request``, warm, in this process (us), for several
    services measured in turns (one call each, round after round),
    so that what else runs on the machine weighs on each of them alike."""
    one, many = _rows(request, 1), _rows(request, 1000)
    ones, manys = _p50s(services, one, 300), _p50s(services, many, 5)
    return [{"warm_1_row_us": a, "warm_1000_rows_us": b} for a, b in zip(ones, manys)]


def _rows(request: dict, count: int) -> dict:
    """``request`` (a table, or tensors' rows) with ``count`` rows, its own repeated."""
    if "inputs" in request:
        return {**request, "inputs": {name: [data[i % len(data)] for i in range(count)] for name, data in request["inputs"].items()}}
    split = request["dataframe_split"]
    data = split["data"]
    return {**request, "dataframe_split": {**split, "data": [data[i % len(data)] for i in range(count)]}}


def _p50s(services: list, request: dict, repeats: int) -> list[float]:
    samples: list[list[int]] = [[] for _ in services]
    for _ in range(repeats + 3):
        for service, taken in zip(services, samples):
            started = time.perf_counter_ns()
            answer = service.score_document(request)
            taken.append(time.perf_counter_ns() - started)
            if not answer.ok:
                raise MpackError(f"the model refused its own input example while measuring: {answer.body}", "check the model's input example against its signature")
    return [round(statistics.median(taken[3:]) / 1000, 1) for taken in samples]


def cold_start_ms(entries: list, folder: Path, request: dict, timer=None) -> float:
    """Median wall time of a fresh ``python -I -S`` importing the bundle's handler and answering
    ``request`` (the bundle's files linked into ``folder``); ``timer``: runs them in a container of
    the bundle's Python (infra/local/python_container.container_timer) instead of this interpreter."""
    materialize(entries, folder)
    if timer is not None:
        return round(statistics.median(timer(folder, _COLD, ["/var/task", json.dumps(request)], COLD_RUNS)) * 1000, 1)
    environment = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "LANG": "C.UTF-8"}
    times = []
    for _ in range(COLD_RUNS):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-I", "-S", "-c", _COLD, str(folder), json.dumps(request)], capture_output=True, text=True, env=environment, timeout=120)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise MpackError(f"measuring the cold start failed: {last[:300]}", "rerun with --debug; build with --runtime onnx to skip the comparison")
    return round(statistics.median(times) * 1000, 1)


def materialize(entries: list, folder: Path) -> None:
    """Bundle entries as files under ``folder``: links to files on disk, bytes written."""
    shutil.rmtree(folder, ignore_errors=True)
    for entry in entries:
        path = folder / entry.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry.data is not None:
            path.write_bytes(entry.data)
        else:
            try:
                os.link(entry.path, path)
            except OSError:  # another file system: a copy (a link would not resolve inside a container)
                shutil.copyfile(entry.path, path)


def prefer_micro(measured: dict) -> tuple[bool, str]:
    """Whether ``--runtime auto`` ships the compiled model (it passed the parity gate beside
    onnxruntime), and why, from its measured warm latency."""
    warm = measured.get("warm_1_row_us")
    if warm is None:
        return False, "the micro runtime's warm latency could not be measured here"
    if warm > WARM_BOUND_MS * 1000:
        return False, f"the micro runtime answers one row in {warm / 1000:.2f} ms warm, over the {WARM_BOUND_MS:g} ms bound"
    return True, f"every operator compiles and one row takes {warm:.0f} us warm (bound {WARM_BOUND_MS * 1000:.0f} us)"
