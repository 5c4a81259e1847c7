"""The HTTP container image against `mlflow models serve`, same model, one run.

    .venv/bin/python bench/image.py [--runs 5] [--requests 1000] [--base-image mpack/python:3.11-bookworm]

Model: StandardScaler + GradientBoostingClassifier (200 trees, 20 features), registered here. The
base image is built from Debian packages (`mpack base-image`) when missing: nothing is pulled.
Figures: image size (and above its base), `mpack build --target container` time for version 1 and
for version 2 after only the model changed, container start (docker run) to first answer, warm
one-row p50/p99 over keep-alive requests to the container's own address (no docker-proxy), and the
same start-to-answer and latency for `mlflow models serve --env-manager local` on the same model.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import cold_start  # noqa: E402
import emulator  # noqa: E402
from mpack.infra.docker_engine import connect  # noqa: E402
from mpack.packager.image.base_image import build_base_image  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

from examples.train_demo import train_and_register  # noqa: E402

FLOORS = {"start_ratio": 10.0, "p50_ratio": 10.0, "rebuild_s": 10.0, "above_base_mb": 200.0}
ONE_ROW = {"dataframe_split": {"columns": [f"f{i:02d}" for i in range(20)], "data": [[0.1] * 20]}}


def first_answer(url: str, deadline_s: float = 120) -> None:
    body = json.dumps(ONE_ROW).encode()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"no answer from {url}")


def latency(host: str, port: int, requests: int) -> dict:
    command = [sys.executable, "-c", emulator.CLIENT, host, str(port), "/invocations", json.dumps(ONE_ROW), "latency", str(requests), "1"]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def container_run(client, tag: str) -> tuple[float, object, str]:
    started = time.perf_counter()
    container = client.containers.run(tag, detach=True)
    container.reload()
    address = container.attrs["NetworkSettings"]["IPAddress"]
    first_answer(f"http://{address}:8080")
    return time.perf_counter() - started, container, address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mlflow_run(uri: str, tracking_uri: str) -> tuple[float, subprocess.Popen, int]:
    port = free_port()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # mlflow starts `uvicorn` by name
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true", "GIT_PYTHON_REFRESH": "quiet"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first_answer(f"http://127.0.0.1:{port}")
    return time.perf_counter() - started, process, port


def stop_mlflow(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--base-image", default="mpack/python:3.11-bookworm")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-image-"))
    print(f"work folder {work}", file=sys.stderr)
    client = connect()
    base = build_base_image(args.base_image, log=lambda text: print(text, file=sys.stderr)).tag
    tracking_uri = train_and_register(work / "store", cold_start.MODEL, trees=200)

    print("building version 1, then version 2 (model change only) ...", file=sys.stderr)
    started = time.perf_counter()
    first = build(BuildOptions(model=f"models:/{cold_start.MODEL}/1", target="container", tracking_uri=tracking_uri, base_image=base, tag="mpack-bench/fraud:1"))
    first_s = time.perf_counter() - started
    train_and_register(work / "store", cold_start.MODEL, trees=201)  # version 2: a different model, same libraries
    started = time.perf_counter()
    second = build(BuildOptions(model=f"models:/{cold_start.MODEL}/2", target="container", tracking_uri=tracking_uri, base_image=base, tag="mpack-bench/fraud:2"))
    rebuild_s = time.perf_counter() - started
    reused = first.image["layers"][:2] == second.image["layers"][:2]

    print("measuring the container: start to first answer, warm latency ...", file=sys.stderr)
    starts = []
    for _ in range(args.runs):
        seconds, container, address = container_run(client, first.artifact)
        starts.append(seconds)
        if len(starts) < args.runs:
            container.remove(force=True)
    ours = latency(address, 8080, args.requests)
    container.remove(force=True)

    print("measuring mlflow models serve on the same model ...", file=sys.stderr)
    mlflow_starts = []
    for _ in range(max(2, args.runs // 2)):
        seconds, process, port = mlflow_run(f"models:/{cold_start.MODEL}/1", tracking_uri)
        mlflow_starts.append(seconds)
        if len(mlflow_starts) < max(2, args.runs // 2):
            stop_mlflow(process)
    theirs = latency("127.0.0.1", port, args.requests)
    stop_mlflow(process)

    start, mlflow_start = statistics.median(starts), statistics.median(mlflow_starts)
    above = (first.image["size_bytes"] - first.image["base_size_bytes"]) / 2**20
    verdict = cold_start.verdict
    rows = [
        ("image size", f"{first.image['size_bytes'] / 2**20:.0f} MB", ""),
        ("image size above its base image", f"{above:.0f} MB", verdict(above, FLOORS["above_base_mb"], f"{FLOORS['above_base_mb']:.0f} MB")),
        ("mpack build --target container, version 1", f"{first_s:.1f} s", f"runtime wheels {'cached' if first.dependencies['cache_hit'] else 'downloaded'}"),
        (
            "rebuild after a model-only change (version 2)",
            f"{rebuild_s:.1f} s",
            verdict(rebuild_s, FLOORS["rebuild_s"], f"{FLOORS['rebuild_s']:.0f} s") + f"; dependency layer {'reused' if reused else 'REBUILT'}",
        ),
        ("mpack container: docker run to first answer", f"{start * 1000:.0f} ms", ""),
        (
            "mlflow models serve: start to first answer",
            f"{mlflow_start * 1000:.0f} ms",
            f"{mlflow_start / start:.1f}x; " + verdict(mlflow_start / start, FLOORS["start_ratio"], f"{FLOORS['start_ratio']:.0f}x", at_most=False),
        ),
        ("mpack container: warm one-row latency", f"p50 {ours['p50_us']:.0f} us, p99 {ours['p99_us']:.0f} us", ""),
        (
            "mlflow models serve: warm one-row latency",
            f"p50 {theirs['p50_us']:.0f} us, p99 {theirs['p99_us']:.0f} us",
            f"{theirs['p50_us'] / ours['p50_us']:.1f}x; " + verdict(theirs["p50_us"] / ours["p50_us"], FLOORS["p50_ratio"], f"{FLOORS['p50_ratio']:.0f}x", at_most=False),
        ),
    ]
    cold_start.print_table(f"mpack container image vs mlflow models serve ({args.runs} starts, {args.requests} warm requests each)", rows)


if __name__ == "__main__":
    main()
