"""Dynamic batching in the HTTP container's server: requests/s and latency with batching on vs off,
at 1, 8 and 32 concurrent clients, in one run (issue 12, part 2).

    .venv/bin/python bench/batching.py [--seconds 6] [--model onnx|sklearn-mlp]

Model: an MLP (256 features -> 4096 -> 4096 -> 10, ReLU, float32) written as ONNX here and built
with `mpack build --model ./mlp.onnx --runtime onnx`; one row takes >= 1 ms on this machine's CPU
(printed). The server is what the container image runs (`python -m mpack.handlers.container_main`,
uvicorn + Starlette, one worker, onnxruntime with one intra-op thread per run as on a 1-vCPU
container), started once with MPACK_MAX_BATCH_SIZE=0 (off) and once with 64 rows (on). Clients:
keep-alive raw-socket HTTP/1.1 clients, each one row per request, in a separate process (no client
library's parsing counted), for --seconds per setting; at one client, both servers run and one client
alternates between them, so the machine's drift hits both alike. Floors: at 32 clients batching >= 3x the
unbatched requests/s with p99 not worse; at 1 client p50 within 0.2 ms of unbatched.

``--model sklearn-mlp``: the same network (same weights) as a scikit-learn MLPRegressor saved with the
float32 tensor signature MLflow infers, built by mpack in its own environment; the float32 graph's
unbatched figure at 32 clients is measured in the same run. Floor: within 1.2x of it (issue 21: a
float64 graph of this model served 78 requests/s against 371).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bench.cold_start import print_table, unzip, verdict  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

FEATURES, HIDDEN, CLASSES = 256, 4096, 10
CONCURRENCY = (1, 8, 32)
FLOORS = {"throughput_x": 3.0, "p50_extra_ms": 0.2, "float32_within_x": 1.2}
CLIENTS = r"""
import json, socket, sys, threading, time
port, clients, seconds, body = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].encode()
head = f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
latencies, errors = [], []
start = threading.Barrier(clients)
def client():
    sock = socket.create_connection(("127.0.0.1", port)); sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    start.wait(); end = time.perf_counter() + seconds; mine = []
    while time.perf_counter() < end:
        began = time.perf_counter(); sock.sendall(head + body)
        status = reader.readline(); length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"): length = int(line.split(b":")[1])
        reader.read(length); mine.append(time.perf_counter() - began)
        if b" 200 " not in status: errors.append(status)
    latencies.extend(mine); sock.close()
threads = [threading.Thread(target=client) for _ in range(clients)]
began = time.perf_counter()
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({"latencies": latencies, "seconds": time.perf_counter() - began, "errors": len(errors)}))
"""


ALTERNATING = r"""
import json, socket, sys, time
ports, seconds, body = [int(p) for p in sys.argv[1].split(",")], float(sys.argv[2]), sys.argv[3].encode()
head = f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
links = []
for port in ports:
    sock = socket.create_connection(("127.0.0.1", port)); sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    links.append((sock, sock.makefile("rb")))
latencies = [[] for _ in ports]; errors = 0
end = time.perf_counter() + seconds * len(ports)
while time.perf_counter() < end:
    for index, (sock, reader) in enumerate(links):
        began = time.perf_counter(); sock.sendall(head + body)
        status = reader.readline(); length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"): length = int(line.split(b":")[1])
        reader.read(length); latencies[index].append(time.perf_counter() - began)
        errors += b" 200 " not in status
print(json.dumps({"latencies": latencies, "seconds": seconds, "errors": errors}))
"""


def mlp_weights() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = [(FEATURES, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, CLASSES)]
    return [(rng.normal(size=shape) / np.sqrt(shape[0])).astype(np.float32) for shape in shapes]


def mlp_model(path: Path) -> np.ndarray:
    weights = [numpy_helper.from_array(array, f"w{i}") for i, array in enumerate(mlp_weights())]
    nodes = [
        helper.make_node("MatMul", ["input", "w0"], ["h0"]),
        helper.make_node("Relu", ["h0"], ["r0"]),
        helper.make_node("MatMul", ["r0", "w1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["r1"]),
        helper.make_node("MatMul", ["r1", "w2"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES])], [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", CLASSES])], weights
    )
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return np.random.default_rng(1).normal(size=(1, FEATURES)).astype(np.float32)


def sklearn_mlp_model(folder: Path) -> None:
    """The same network as a scikit-learn MLPRegressor (same weights, zero biases) saved as an MLflow
    model with the float32 tensor signature MLflow infers from a float32 array: what a user trains."""
    import mlflow.sklearn
    from sklearn.neural_network import MLPRegressor

    rows = np.random.default_rng(2).normal(size=(16, FEATURES)).astype(np.float32)
    model = MLPRegressor(hidden_layer_sizes=(HIDDEN, HIDDEN), max_iter=1).fit(rows, np.zeros((16, CLASSES), np.float32))
    model.coefs_ = mlp_weights()
    model.intercepts_ = [np.zeros(array.shape[1], np.float32) for array in model.coefs_]
    mlflow.sklearn.save_model(model, str(folder), input_example=rows[:2], serialization_format="cloudpickle", pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True))


def one_row_ms(model: Path, row: np.ndarray) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    times = []
    for _ in range(50):
        started = time.perf_counter()
        session.run(None, {"input": row})
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def serve(root: Path, batch_rows: int) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MPACK_BUNDLE_ROOT": str(root), "PORT": str(port), "MPACK_HOST": "127.0.0.1", "MPACK_MAX_BATCH_SIZE": str(batch_rows), "MPACK_LOG_LEVEL": "warning", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "mpack.handlers.container_main"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def measure(port: int, clients: int, seconds: float, body: str) -> dict:
    output = subprocess.run([sys.executable, "-c", CLIENTS, str(port), str(clients), str(seconds), body], capture_output=True, text=True, check=True).stdout
    result = json.loads(output)
    latencies = sorted(result["latencies"])
    return {
        "rps": len(latencies) / result["seconds"],
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": result["errors"],
    }


def one_client_alternating(ports: list[int], seconds: float, body: str) -> list[dict]:
    """One client alternating requests between the servers, so the machine's drift hits each alike."""
    output = subprocess.run([sys.executable, "-c", ALTERNATING, ",".join(map(str, ports)), str(seconds), body], capture_output=True, text=True, check=True).stdout
    result = json.loads(output)
    figures = []
    for latencies in result["latencies"]:
        latencies = sorted(latencies)
        figures.append(
            {
                "rps": len(latencies) / sum(latencies),
                "p50": statistics.median(latencies) * 1000,
                "p99": latencies[int(len(latencies) * 0.99)] * 1000,
                "errors": result["errors"],
            }
        )
    return figures


def bundle_root(model: Path, work: Path, name: str) -> Path:
    options = BuildOptions(model=str(model), target="lambda", runtime="onnx", output=work / f"{name}.zip", python=f"{sys.version_info[0]}.{sys.version_info[1]}", allow_pickle=True)
    return unzip(Path(build(options).artifact), work / name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--model", choices=("onnx", "sklearn-mlp"), default="onnx", help="onnx: the network as a float32 ONNX graph; sklearn-mlp: the same network as a scikit-learn MLPRegressor logged with a float32 tensor signature, measured beside the float32 graph")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-batching-"))
    model = work / "mlp.onnx"
    row = mlp_model(model)
    root = bundle_root(model, work, "mlp")
    float32_root = None
    if args.model == "sklearn-mlp":
        sklearn_mlp_model(work / "sklearn-mlp")
        float32_root, root = root, bundle_root(work / "sklearn-mlp", work, "sklearn")
    body = json.dumps({"inputs": row.tolist()})
    results: dict[tuple[str, int], dict] = {}
    servers = {mode: serve(root, rows) for mode, rows in (("off", 0), ("on", 64))}
    try:
        for _, port in servers.values():
            measure(port, 4, 1.0, body)  # warm-up
        results[("off", 1)], results[("on", 1)] = one_client_alternating([servers["off"][1], servers["on"][1]], args.seconds, body)
        for mode, (_, port) in servers.items():  # the other server idles meanwhile
            for clients in CONCURRENCY[1:]:
                results[(mode, clients)] = measure(port, clients, args.seconds, body)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(20)
    if float32_root is not None:  # the float32 graph's unbatched figure, in the same run
        process, port = serve(float32_root, 0)
        try:
            measure(port, 4, 1.0, body)
            results[("float32 graph", 32)] = measure(port, 32, args.seconds, body)
        finally:
            process.terminate()
            process.wait(20)
    table = [("one row, onnxruntime in process (1 thread)", f"{one_row_ms(model, row):.2f} ms", ">= 1 ms wanted")]
    for clients in CONCURRENCY:
        off, on = results[("off", clients)], results[("on", clients)]
        for mode, figures in (("off", off), ("on", on)):
            errors = f", {figures['errors']} errors" if figures["errors"] else ""
            table.append((f"{clients:>2} clients, batching {mode}", f"{figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:6.2f} ms{errors}", ""))
        if clients == 32:
            table.append(
                ("  32 clients: on / off throughput", f"{on['rps'] / off['rps']:.1f}x", verdict(on["rps"] / off["rps"], FLOORS["throughput_x"], f"{FLOORS['throughput_x']:.0f}x", at_most=False))
            )
            table.append(("  32 clients: p99 on vs off", f"{on['p99']:.2f} vs {off['p99']:.2f} ms", verdict(on["p99"], off["p99"], "unbatched's")))
        if clients == 1:
            extra = on["p50"] - off["p50"]
            table.append(("   1 client: p50 on - off", f"{extra:+.3f} ms", verdict(extra, FLOORS["p50_extra_ms"], f"{FLOORS['p50_extra_ms']} ms")))
    if float32_root is not None:
        graph, ours = results[("float32 graph", 32)], results[("off", 32)]
        table.append(("32 clients, unbatched, the float32 ONNX graph", f"{graph['rps']:7.0f} req/s  p50 {graph['p50']:6.2f} ms  p99 {graph['p99']:6.2f} ms", ""))
        table.append(("  float32 graph / scikit-learn MLP bundle", f"{graph['rps'] / ours['rps']:.2f}x", verdict(graph["rps"] / ours["rps"], FLOORS["float32_within_x"], f"{FLOORS['float32_within_x']}x")))
    print_table(f"dynamic batching, HTTP container server, model {args.model} ({args.seconds:g} s per setting, one run)", table)


if __name__ == "__main__":
    main()
