"""What the local Lambda platform costs and how honestly it measures, in one run.

    .venv/bin/python bench/emulator.py [--runs 10] [--requests 2000] [--seconds 5]

Same model and bundle as bench/cold_start.py (StandardScaler + GradientBoostingClassifier, 200
trees, 20 features), built here. Every figure comes from this run, on this machine:
  - the bundle's own cold start (a): fresh `python -I -S` importing the handler and answering once;
  - the Init Duration `mpack invoke` reports for the same bundle, and `mpack invoke`'s wall time end
    to end (CLI start, runtime start under awslambdaric, one invocation, exit), interleaved with (a);
  - warm one-row invocations through `mpack serve`'s Invoke API (a keep-alive raw-socket client in
    its own process, so no client library's parsing is counted) against the handler called in-process;
  - requests/s through `mpack serve --max-concurrency 4` with 8 concurrent keep-alive clients.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import cold_start  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

from examples.train_demo import train_and_register  # noqa: E402

FLOORS = {"overhead_ms": 1.0, "init_ratio": 1.2, "invoke_extra_ms": 500.0}
MPACK = [sys.executable, "-m", "mpack.packager.cli.app"]
CLIENT = r"""
import json, socket, sys, threading, time
host, port, path, payload, mode, amount, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode(), sys.argv[5], float(sys.argv[6]), int(sys.argv[7])
request = b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(payload), payload)

def one(sock, buffer):
    sock.sendall(request)
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = buffer[:end].decode("latin-1").lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(buffer) >= end + 4 + length:
                assert head.startswith("http/1.1 200"), head
                assert b"predictions" in buffer[end + 4 : end + 4 + length]
                return buffer[end + 4 + length :]
        buffer += sock.recv(65536)

def connect():
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock

if mode == "latency":
    sock, buffer, samples = connect(), b"", []
    for i in range(int(amount)):
        started = time.perf_counter_ns()
        buffer = one(sock, buffer)
        samples.append(time.perf_counter_ns() - started)
    samples = sorted(samples[len(samples) // 5 :])
    print(json.dumps({"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000}))
else:
    counts, stop = [0] * clients, time.monotonic() + amount
    def worker(index):
        sock, buffer = connect(), b""
        buffer = one(sock, buffer)
        while time.monotonic() < stop:
            buffer = one(sock, buffer)
            counts[index] += 1
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    [t.start() for t in threads]; [t.join() for t in threads]
    print(json.dumps({"requests": sum(counts), "seconds": time.monotonic() - started}))
"""


def invoke_once(bundle: Path, one_row: dict, cache: Path) -> tuple[float, float]:
    """(wall seconds of `mpack invoke`, Init Duration ms it reported)."""
    started = time.perf_counter()
    result = subprocess.run(MPACK + ["invoke", str(bundle), "--data", json.dumps(one_row), "--json", "--cache-dir", str(cache)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"mpack invoke failed:\n{result.stderr}")
    return wall, float(re.search(r"Init Duration: ([\d.]+) ms", result.stderr).group(1))


class Server:
    def __init__(self, bundle: Path, cache: Path, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(MPACK + ["serve", str(bundle), "--port", "0", "--max-concurrency", "4", "--quiet", "--cache-dir", str(cache)], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        deadline = time.monotonic() + 60
        while not (match := re.search(r"Invoke API\s+http://([\d.]+):(\d+)(/2015-03-31/functions/[\w-]+/invocations)", log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("mpack serve did not start:\n" + log.read_text())
            time.sleep(0.05)
        self.host, self.port, self.path = match.group(1), match.group(2), match.group(3)

    def client(self, payload: dict, mode: str, amount: float, clients: int = 1) -> dict:
        command = [sys.executable, "-c", CLIENT, self.host, self.port, self.path, json.dumps(payload), mode, str(amount), str(clients)]
        return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)

    def cold_starts(self) -> int:
        return self.log.read_text().count("Init Duration")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-emulator-"))
    cache = work / "cache"
    print(f"work folder {work}", file=sys.stderr)
    tracking_uri = train_and_register(work / "store", cold_start.MODEL, trees=200)
    bundle = build(BuildOptions(model=f"models:/{cold_start.MODEL}/1", tracking_uri=tracking_uri, output=work / "bundle.zip", runtime="onnx")).artifact
    folder = cold_start.unzip(bundle, work / "unzipped")
    one_row = {"dataframe_split": {"columns": [f"f{i:02d}" for i in range(20)], "data": [[0.1] * 20]}}
    isolated = [sys.executable, "-I", "-S", "-c"]
    lambda_env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "LANG": "C.UTF-8"}

    print("measuring cold starts: bundle alone vs mpack invoke (interleaved) ...", file=sys.stderr)
    first_wall, _ = invoke_once(bundle, one_row, cache)  # unpacks the zip into the cache once
    a, walls, inits = [], [], []
    for _ in range(args.runs):
        a += cold_start.timed_runs(isolated + [cold_start.BUNDLE_COLD, str(folder), json.dumps(one_row)], 1, lambda_env)
        wall, init = invoke_once(bundle, one_row, cache)
        walls.append(wall)
        inits.append(init)

    print("measuring warm latency (in-process vs through mpack serve) and throughput ...", file=sys.stderr)
    warm = json.loads(subprocess.run(isolated + [cold_start.WARM, str(folder), json.dumps(one_row)], capture_output=True, text=True, env=lambda_env, check=True).stdout)
    server = Server(bundle, cache, work / "serve.log")
    try:
        served = server.client(one_row, "latency", args.requests)
        load = server.client(one_row, "throughput", args.seconds, clients=8)
        instances = server.cold_starts()
    finally:
        server.stop()

    cold_ms, init_ms, wall_ms = statistics.median(a) * 1000, statistics.median(inits), statistics.median(walls) * 1000
    overhead_p50 = (served["p50_us"] - warm["p50_us"]) / 1000
    overhead_p99 = (served["p99_us"] - warm["p99_us"]) / 1000
    rows = [
        ("bundle cold start alone, `python -I -S` (median)", f"{cold_ms:.0f} ms", ""),
        (
            "Init Duration reported by mpack invoke (median)",
            f"{init_ms:.0f} ms",
            f"{init_ms / cold_ms:.2f}x; " + cold_start.verdict(init_ms / cold_ms, FLOORS["init_ratio"], f"{FLOORS['init_ratio']}x"),
        ),
        (
            "mpack invoke end to end (median)",
            f"{wall_ms:.0f} ms",
            f"+{wall_ms - cold_ms:.0f} ms; " + cold_start.verdict(wall_ms - cold_ms, FLOORS["invoke_extra_ms"], f"+{FLOORS['invoke_extra_ms']:.0f} ms"),
        ),
        ("mpack invoke, first run (unpacks the zip)", f"{first_wall * 1000:.0f} ms", ""),
        ("warm invocation, handler in-process", f"p50 {warm['p50_us']:.0f} us, p99 {warm['p99_us']:.0f} us", ""),
        ("warm invocation through mpack serve", f"p50 {served['p50_us']:.0f} us, p99 {served['p99_us']:.0f} us", ""),
        (
            "emulator overhead per warm invocation",
            f"p50 {overhead_p50:.2f} ms, p99 {overhead_p99:.2f} ms",
            "p50 " + cold_start.verdict(overhead_p50, FLOORS["overhead_ms"], f"{FLOORS['overhead_ms']} ms"),
        ),
        ("throughput, 8 clients, --max-concurrency 4", f"{load['requests'] / load['seconds']:.0f} req/s", f"{instances} instances started"),
    ]
    cold_start.print_table(f"mpack local Lambda platform benchmark ({args.runs} cold runs, {args.requests} warm requests, {args.seconds:g} s load)", rows)


if __name__ == "__main__":
    main()
