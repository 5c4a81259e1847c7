"""Cold start, size and warm latency of a Lambda bundle against MLflow's own path, in one run.

    .venv/bin/python bench/cold_start.py [--runs 10] [--skip-mlflow-size]

Model: StandardScaler + GradientBoostingClassifier (200 trees, 20 features), registered in a
sqlite MLflow store made for this run. Every figure below comes from this run, on this machine:
  (a) mpack bundle: fresh `python -I -S` process importing the handler and answering one direct
      invocation (process wall time, median);
  (b) MLflow: fresh process `mlflow.pyfunc.load_model("models:/...")` + predict;
  (c) floor: fresh `python -I -S` process importing onnxruntime (the bundle's own copy), creating
      the session and running once.
Plus the zipped bundle against the model's own MLflow requirements installed and zipped, the cold
start of an API Gateway HTTP API event in both HTTP modes, and the handler's warm latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpack.infra.local.events import wrap_event  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

from examples.train_demo import train_and_register  # noqa: E402

# The benchmarks run bundles in this interpreter, so they build for its Python, as a CI job pins one
# (Lambda zips otherwise default to the newest Lambda Python, run in a container of it).
os.environ.setdefault("MPACK_PYTHON", f"{sys.version_info[0]}.{sys.version_info[1]}")

MODEL = "bench-fraud"
FLOORS = {"a/c": 1.5, "b/a": 20.0, "zip_mb": 27.0, "warm_us": 150.0}

BUNDLE_COLD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
class Context:
    function_name = "bench"; function_version = "$LATEST"; memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"; aws_request_id = "bench"
import mpack_handler
answer = mpack_handler.handler(json.loads(sys.argv[2]), Context())
assert ("predictions" in answer) or answer.get("statusCode") == 200, answer
"""
FLOOR_COLD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1] + "/model.onnx", providers=["CPUExecutionProvider"])
feed = session.get_inputs()[0]  # the graph's own input dtype (float64 for double columns)
session.run(None, {feed.name: np.zeros((1, 20), dtype=np.float64 if feed.type == "tensor(double)" else np.float32)})
"""
MLFLOW_COLD = r"""
import sys, pandas as pd, mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict(pd.DataFrame([[0.1] * 20], columns=[f"f{i:02d}" for i in range(20)]))
"""
WARM = r"""
import json, sys, time, os
sys.path.insert(0, sys.argv[1])
class Context:
    function_name = "bench"; function_version = "$LATEST"; memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"; aws_request_id = "bench"
import mpack_handler
request, context = json.loads(sys.argv[2]), Context()
stdout = sys.stdout
sys.stdout = open(os.devnull, "w")  # EMF and log lines go to CloudWatch on Lambda, not to this terminal
samples = []
for i in range(3000):
    started = time.perf_counter_ns()
    mpack_handler.handler(request, context)
    samples.append(time.perf_counter_ns() - started)
samples = sorted(samples[500:])
stdout.write(json.dumps({"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000}))
"""


def verdict(value: float, floor: float, shown: str, at_most: bool = True) -> str:
    """``<= floor ok`` (or ``>=``), or MISSED: the floor is printed beside every figure it judges."""
    met = value <= floor if at_most else value >= floor
    return f"{'<=' if at_most else '>='} {shown} {'ok' if met else 'MISSED'}"


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    print(f"\n{title}")
    for name, figure, judged in rows:
        print(f"  {name:<50} {figure:<30} {judged}")


def timed_runs(command: list[str], runs: int, env: dict | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"benchmark process failed: {' '.join(command[:3])}...\n{result.stderr[-2000:]}")
        times.append(elapsed)
    return times


def unzip(bundle: Path, folder: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    return folder


def requirements_zip_size(model_dir_uri: str, tracking_uri: str, work: Path) -> tuple[int, int]:
    """The model's own requirements.txt installed for this platform (cp311, linux x86_64), zipped."""
    import mlflow.artifacts

    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_dir_uri, dst_path=str(work / "model"), tracking_uri=tracking_uri))
    site = work / "mlflow-site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:", "--target", str(site), "-r", str(folder / "requirements.txt")], check=True)
    unzipped = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    target = work / "mlflow-requirements.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(site.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(site).as_posix())
    return target.stat().st_size, unzipped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-mlflow-size", action="store_true", help="skip installing the model's MLflow requirements (slow)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-"))
    print(f"work folder {work}", file=sys.stderr)
    tracking_uri = train_and_register(work / "store", MODEL, trees=200)
    uri = f"models:/{MODEL}/1"
    native = build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / "native.zip", runtime="onnx"))  # this bench judges the onnxruntime bundle (bench/micro_runtime.py: the micro one)
    asgi = build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / "asgi.zip", lambda_http="asgi"))
    native_dir, asgi_dir = unzip(native.artifact, work / "native"), unzip(asgi.artifact, work / "asgi")
    one_row = {"dataframe_split": {"columns": [f"f{i:02d}" for i in range(20)], "data": [[0.1] * 20]}}
    http_event = wrap_event("apigw-http", one_row)
    isolated = [sys.executable, "-I", "-S", "-c"]
    lambda_env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "LANG": "C.UTF-8"}

    print("measuring (a) bundle cold start, (c) onnxruntime floor, (b) MLflow ...", file=sys.stderr)
    a, c = [], []
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        a += timed_runs(isolated + [BUNDLE_COLD, str(native_dir), json.dumps(one_row)], 1, lambda_env)
        c += timed_runs(isolated + [FLOOR_COLD, str(native_dir)], 1, lambda_env)
    mlflow_env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true", "GIT_PYTHON_REFRESH": "quiet"}
    b = timed_runs([sys.executable, "-c", MLFLOW_COLD, uri], max(3, args.runs // 2), mlflow_env)
    print("measuring HTTP API cold start in both modes and warm latency ...", file=sys.stderr)
    http_native = timed_runs(isolated + [BUNDLE_COLD, str(native_dir), json.dumps(http_event)], args.runs, lambda_env)
    http_asgi = timed_runs(isolated + [BUNDLE_COLD, str(asgi_dir), json.dumps(http_event)], args.runs, lambda_env)
    warm = json.loads(subprocess.run(isolated + [WARM, str(native_dir), json.dumps(one_row)], capture_output=True, text=True, env=lambda_env, check=True).stdout)
    sizes = None if args.skip_mlflow_size else requirements_zip_size(f"models:/{MODEL}/1", tracking_uri, work)

    med = {k: statistics.median(v) * 1000 for k, v in {"a": a, "b": b, "c": c, "http_native": http_native, "http_asgi": http_asgi}.items()}
    zip_mb = native.zipped_bytes / 2**20
    rows = [
        ("(a) mpack bundle cold start (process, median)", f"{med['a']:.0f} ms", ""),
        ("(b) MLflow pyfunc load + predict (process, median)", f"{med['b']:.0f} ms", ""),
        ("(c) floor: onnxruntime import + session + run", f"{med['c']:.0f} ms", ""),
        ("(a)/(c)", f"{med['a'] / med['c']:.2f}x", verdict(med["a"] / med["c"], FLOORS["a/c"], f"{FLOORS['a/c']}x")),
        ("(b)/(a)", f"{med['b'] / med['a']:.1f}x", verdict(med["b"] / med["a"], FLOORS["b/a"], f"{FLOORS['b/a']}x", at_most=False)),
        ("bundle zipped / unzipped", f"{zip_mb:.1f} MB / {native.unzipped_bytes / 2**20:.1f} MB", verdict(zip_mb, FLOORS["zip_mb"], f"{FLOORS['zip_mb']} MB")),
    ]
    if sizes:
        rows.append(("model's MLflow requirements zipped / unzipped", f"{sizes[0] / 2**20:.0f} MB / {sizes[1] / 2**20:.0f} MB", f"{sizes[0] / native.zipped_bytes:.1f}x the bundle"))
    rows += [
        ("HTTP API event cold start, native", f"{med['http_native']:.0f} ms", ""),
        ("HTTP API event cold start, asgi (Mangum)", f"{med['http_asgi']:.0f} ms", f"+{med['http_asgi'] - med['http_native']:.0f} ms"),
        ("warm one-row direct invocation, in-process", f"p50 {warm['p50_us']:.0f} us, p99 {warm['p99_us']:.0f} us", "p50 " + verdict(warm["p50_us"], FLOORS["warm_us"], f"{FLOORS['warm_us']:.0f} us")),
    ]
    print_table(f"mpack cold-start benchmark ({args.runs} runs; onnxruntime {native.manifest['runtime']['onnxruntime']} in the bundle)", rows)


if __name__ == "__main__":
    main()
