"""The micro runtime (--runtime micro) against the onnxruntime bundle and the interpreter's floor,
in one run.

    .venv/bin/python bench/micro_runtime.py [--runs 15]

Model: StandardScaler + GradientBoostingClassifier (200 trees, 20 features), registered in a
sqlite MLflow store made for this run, built twice (--runtime micro, --runtime onnx). Every
figure comes from this run, on this machine, with bench/cold_start.py's harness:
  cold start: a fresh `python -I -S` importing the bundle's handler and answering one direct
      invocation, process wall time, median, the three kinds interleaved;
  floor: a fresh `python -I -S -c pass`;
  warm: p50/p99 of the handler answering one row and 1,000 rows in a warm process.
Floors (issue 13): micro zip <= 1 MB; micro cold start <= 30 ms median and <= 0.25x the
onnxruntime bundle's; warm one row <= 150 us p50; 1,000-row latency reported for both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cold_start import BUNDLE_COLD, WARM, print_table, timed_runs, unzip, verdict  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

from examples.train_demo import train_and_register  # noqa: E402

MODEL = "bench-micro"
FLOORS = {"zip_mb": 1.0, "cold_ms": 30.0, "cold_ratio": 0.25, "warm_us": 150.0}
# the request from a file (1,000 rows overflow a command line), the number of calls from argv[3]
WARM_ROWS = WARM.replace("json.loads(sys.argv[2])", "json.load(open(sys.argv[2]))").replace("range(3000)", "range(int(sys.argv[3]))").replace("samples[500:]", "samples[int(sys.argv[3]) // 6:]")


def warm(bundle: Path, request: dict, env: dict, repeats: int) -> dict:
    request_file = bundle.parent / f"{bundle.name}-request-{repeats}.json"
    request_file.write_text(json.dumps(request))
    command = [sys.executable, "-I", "-S", "-c", WARM_ROWS, str(bundle), str(request_file), str(repeats)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-micro-"))
    print(f"work folder {work}", file=sys.stderr)
    tracking_uri = train_and_register(work / "store", MODEL, trees=200)
    uri = f"models:/{MODEL}@champion"
    micro = build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / "micro.zip", runtime="auto"))  # auto: measures both runtimes, then ships micro
    assert micro.runtime_choice["runtime"] == "micro", micro.runtime_choice
    onnx = build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / "onnx.zip", runtime="onnx"))
    micro_dir, onnx_dir = unzip(micro.artifact, work / "micro"), unzip(onnx.artifact, work / "onnx")
    example = micro.manifest["input_example"]["dataframe_split"]
    one_row = {"dataframe_split": {"columns": example["columns"], "data": example["data"][:1]}}
    thousand = {"dataframe_split": {"columns": example["columns"], "data": [example["data"][i % len(example["data"])] for i in range(1000)]}}
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "LANG": "C.UTF-8"}
    isolated = [sys.executable, "-I", "-S", "-c"]

    print(f"measuring cold starts ({args.runs} runs of each, interleaved) ...", file=sys.stderr)
    cold = {"micro": [], "onnx": [], "floor": []}
    for _ in range(args.runs):
        cold["micro"] += timed_runs(isolated + [BUNDLE_COLD, str(micro_dir), json.dumps(one_row)], 1, env)
        cold["onnx"] += timed_runs(isolated + [BUNDLE_COLD, str(onnx_dir), json.dumps(one_row)], 1, env)
        cold["floor"] += timed_runs(isolated + ["pass"], 1, env)
    ms = {k: statistics.median(v) * 1000 for k, v in cold.items()}
    print("measuring warm latency ...", file=sys.stderr)
    warm_one = {name: warm(folder, one_row, env, 3000) for name, folder in (("micro", micro_dir), ("onnx", onnx_dir))}
    warm_many = {name: warm(folder, thousand, env, 60) for name, folder in (("micro", micro_dir), ("onnx", onnx_dir))}

    zip_mb = micro.zipped_bytes / 2**20
    ratio = ms["micro"] / ms["onnx"]
    print_table(
        f"cold start, fresh process to first answer (median of {args.runs}, interleaved)",
        [
            ("micro bundle", f"{ms['micro']:.1f} ms", verdict(ms["micro"], FLOORS["cold_ms"], f"{FLOORS['cold_ms']:.0f} ms")),
            ("onnxruntime bundle", f"{ms['onnx']:.1f} ms", ""),
            ("interpreter floor (python -I -S -c pass)", f"{ms['floor']:.1f} ms", ""),
            ("micro / onnxruntime", f"{ratio:.2f}x", verdict(ratio, FLOORS["cold_ratio"], f"{FLOORS['cold_ratio']}x")),
            ("micro - floor", f"{ms['micro'] - ms['floor']:.1f} ms", "not judged"),
        ],
    )
    print_table(
        "warm latency, handler in a warm process (p50 / p99)",
        [
            ("micro, 1 row", f"{warm_one['micro']['p50_us']:.0f} / {warm_one['micro']['p99_us']:.0f} us", verdict(warm_one["micro"]["p50_us"], FLOORS["warm_us"], f"{FLOORS['warm_us']:.0f} us")),
            ("onnxruntime, 1 row", f"{warm_one['onnx']['p50_us']:.0f} / {warm_one['onnx']['p99_us']:.0f} us", ""),
            ("micro, 1,000 rows", f"{warm_many['micro']['p50_us'] / 1000:.1f} / {warm_many['micro']['p99_us'] / 1000:.1f} ms", "reported"),
            ("onnxruntime, 1,000 rows", f"{warm_many['onnx']['p50_us'] / 1000:.1f} / {warm_many['onnx']['p99_us'] / 1000:.1f} ms", "reported"),
        ],
    )
    print_table(
        "bundle size",
        [
            ("micro zip", f"{micro.zipped_bytes / 1024:.0f} KiB zipped, {micro.unzipped_bytes / 1024:.0f} KiB unzipped", verdict(zip_mb, FLOORS["zip_mb"], "1 MB")),
            ("onnxruntime zip", f"{onnx.zipped_bytes / 2**20:.1f} MB zipped, {onnx.unzipped_bytes / 2**20:.1f} MB unzipped", ""),
        ],
    )
    print_table("the build's own measurement (auto's choice)", [(k, json.dumps(v), "") for k, v in micro.runtime_choice["measured"].items()])


if __name__ == "__main__":
    main()
