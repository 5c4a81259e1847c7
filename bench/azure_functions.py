"""The azure bundle under the local Functions host against the Lambda bundle of the same model, in
one run.

    .venv/bin/python bench/azure_functions.py [--runs 10]

Model: StandardScaler + GradientBoostingClassifier (200 trees, 20 features), registered in a sqlite
MLflow store made for this run; built twice, --target lambda and --target azure. Every figure comes
from this run, on this machine:
  cold start, azure: a fresh local Functions host answers one POST /api/invocations (its worker
      process starts, imports function_app.py, indexes the app, loads the model, answers), wall time
      of the whole request, median;
  cold start, Lambda: a fresh `python -I -S` process imports the Lambda handler and answers one
      direct invocation (bench/cold_start.py's harness), process wall time, median;
  sizes of both zips;
  warm overhead of the local host per request: p50 of a request through the host minus p50 of the
      same function called in-process with an azure.functions.HttpRequest.
Floors (issue 11): azure cold start <= 1.3x the Lambda bundle's; local host overhead <= 1 ms p50.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cold_start import BUNDLE_COLD, print_table, timed_runs, unzip, verdict  # noqa: E402
from mpack.infra.functions_host.app_config import HostConfig  # noqa: E402
from mpack.infra.functions_host.host import FunctionsHost, HostRequest  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

from examples.train_demo import train_and_register  # noqa: E402

MODEL = "bench-azure"
FLOORS = {"cold_ratio": 1.3, "overhead_ms": 1.0}
IN_PROCESS = r"""
import json, sys, time
root = sys.argv[1]
sys.path[:0] = [root, root + "/.python_packages/lib/site-packages"]
import azure.functions as func
import function_app
from mpack.handlers import azure_function
body = sys.argv[2].encode()
request = func.HttpRequest(method="POST", url="http://localhost/api/invocations", headers={"content-type": "application/json"}, params={}, route_params={}, body=body)
samples = []
for i in range(2500):
    started = time.perf_counter_ns()
    response = azure_function.invocations(request)
    samples.append(time.perf_counter_ns() - started)
assert response.status_code == 200, response.get_body()
samples = sorted(samples[500:])
print(json.dumps({"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000}))
"""


ON_STARTED_WORKER = r"""
import json, sys, time
root = sys.argv[1]
sys.path[:0] = [root, root + "/.python_packages/lib/site-packages"]
import azure.functions as func  # what Azure's Python worker has imported before it loads an app
started = time.perf_counter()
import function_app
from mpack.handlers import azure_function
request = func.HttpRequest(method="POST", url="http://localhost/api/invocations", headers={"content-type": "application/json"}, params={}, route_params={}, body=sys.argv[2].encode())
response = azure_function.invocations(request)
assert response.status_code == 200, response.get_body()
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""


def app_on_started_worker(app: Path, body: str, runs: int, env: dict) -> float:
    """The app's own share of a cold start: import, model load and first answer in a process that
    has already imported azure.functions (informational: the floor is judged on the whole)."""
    times = [json.loads(subprocess.run([sys.executable, "-I", "-S", "-c", ON_STARTED_WORKER, str(app), body], capture_output=True, text=True, check=True, env=env).stdout)["ms"] for _ in range(runs)]
    return statistics.median(times)


def host_cold_start(app: Path, body: bytes, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        host = FunctionsHost(app, HostConfig("bench"))
        started = time.perf_counter()
        answer = host.handle(HostRequest("POST", "/api/invocations", {}, {"content-type": "application/json", "x-functions-key": host.keys.master}, body))
        times.append(time.perf_counter() - started)
        host.close()
        if answer.status != 200:
            raise SystemExit(f"the azure app answered {answer.status}: {answer.body[:300]!r}\n{answer.log}")
    return times


def host_warm(app: Path, body: bytes, requests: int = 2500) -> dict:
    host = FunctionsHost(app, HostConfig("bench"))
    headers = {"content-type": "application/json", "x-functions-key": host.keys.master}
    try:
        samples = []
        for _ in range(requests):
            started = time.perf_counter_ns()
            answer = host.handle(HostRequest("POST", "/api/invocations", {}, headers, body))
            samples.append(time.perf_counter_ns() - started)
            assert answer.status == 200, answer.body
    finally:
        host.close()
    samples = sorted(samples[500:])
    return {"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-azure-"))
    print(f"work folder {work}", file=sys.stderr)
    tracking_uri = train_and_register(work / "store", MODEL, trees=200)
    uri = f"models:/{MODEL}@champion"
    lambda_zip = build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / "lambda.zip", runtime="onnx"))  # the onnxruntime bundle: the same runtime as the azure app
    azure_zip = build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / "azure.zip", target="azure"))
    lambda_dir, azure_dir = unzip(lambda_zip.artifact, work / "lambda"), unzip(azure_zip.artifact, work / "azure")
    request = lambda_zip.manifest["input_example"]
    body = json.dumps({"dataframe_split": {"columns": request["dataframe_split"]["columns"], "data": request["dataframe_split"]["data"][:1]}})
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "LANG": "C.UTF-8"}

    # interleaved, so drift on a noisy machine hits both alike
    lambda_cold, azure_cold = [], []
    for _ in range(args.runs):
        lambda_cold += timed_runs([sys.executable, "-I", "-S", "-c", BUNDLE_COLD, str(lambda_dir), body], 1, env)
        azure_cold += host_cold_start(azure_dir, body.encode(), 1)
    lambda_ms, azure_ms = statistics.median(lambda_cold) * 1000, statistics.median(azure_cold) * 1000
    ratio = azure_ms / lambda_ms

    app_share_ms = app_on_started_worker(azure_dir, body, args.runs, env)
    direct = json.loads(subprocess.run([sys.executable, "-I", "-S", "-c", IN_PROCESS, str(azure_dir), body], capture_output=True, text=True, check=True, env=env).stdout)
    through = host_warm(azure_dir, body.encode())
    overhead_ms = (through["p50_us"] - direct["p50_us"]) / 1000

    print_table(
        f"cold start, fresh process to first answer (median of {args.runs}, interleaved)",
        [
            ("azure app on the local Functions host", f"{azure_ms:.0f} ms", ""),
            ("Lambda bundle (fresh python -I -S)", f"{lambda_ms:.0f} ms", ""),
            ("azure / Lambda", f"{ratio:.2f}x", verdict(ratio, FLOORS["cold_ratio"], f"{FLOORS['cold_ratio']}x")),
            ("(info) the app's share, azure.functions already imported", f"{app_share_ms:.0f} ms", "not judged"),
        ],
    )
    print_table(
        "bundle sizes",
        [
            ("azure zip (zipped / unzipped)", f"{azure_zip.zipped_bytes / 2**20:.1f} / {azure_zip.unzipped_bytes / 2**20:.1f} MB", f"onnxruntime {azure_zip.manifest['runtime']['onnxruntime']}"),
            ("Lambda zip (zipped / unzipped)", f"{lambda_zip.zipped_bytes / 2**20:.1f} / {lambda_zip.unzipped_bytes / 2**20:.1f} MB", f"onnxruntime {lambda_zip.manifest['runtime']['onnxruntime']}"),
        ],
    )
    print_table(
        "warm, one row (2,000 requests after 500 warm-up)",
        [
            ("through the local Functions host, p50 / p99", f"{through['p50_us']:.0f} / {through['p99_us']:.0f} us", ""),
            ("the function in-process, p50 / p99", f"{direct['p50_us']:.0f} / {direct['p99_us']:.0f} us", ""),
            ("host overhead per request, p50", f"{overhead_ms:.3f} ms", verdict(overhead_ms, FLOORS["overhead_ms"], f"{FLOORS['overhead_ms']} ms")),
        ],
    )


if __name__ == "__main__":
    main()
