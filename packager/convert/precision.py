"""``--precision fp16``: the optimized graph's float32 weights and arithmetic in half precision.

For the gpu target only: a GPU runs half precision natively (tensor cores), so a deep net answers
sooner and its weights take half the memory and bandwidth; a CPU mostly converts back and forth. The
graph's inputs and outputs stay float32, so the signature, the protocol and every client are
unchanged. onnxruntime's own converter (``onnxruntime.transformers.float16``) does the rewrite: it
keeps in float32, behind Cast nodes, the operators that have no half-precision form (tree ensembles,
some shape ops), and clamps weights to float16's range. The result is not equal to the original
model, so it gets its own parity tolerance (``FP16_TOLERANCE``) and the parity gate measures it
against the original like any other build.

One thing a CPU check cannot see by itself: onnxruntime's CPU provider has few float16 kernels, so it
computes most halved nodes in float32 (and drops the Cast pairs around them) — an activation past
float16's largest value (65,504), which a GPU turns into inf, stays finite there. ``RangeProbe``
closes that gap: while the parity rows run, it reads every float16 intermediate of the halved graph
in float16 (so each is also rounded to float16, as a GPU stores it, and the parity figures include
that) and the same tensor of the float32 graph, and names each one that is finite in float32 but not
in half precision.
"""

from __future__ import annotations

import numpy as np

from mpack.infra.errors import MpackError

PRECISIONS = ("auto", "fp64", "fp32", "fp16")  # auto: chosen by measurement (packager/runtimes/onnx.py)
FP16_TOLERANCE = 1e-2  # float16 keeps ~3 significant digits; a sum over thousands of products loses a few more


def default_tolerance(precision: str) -> float:
    return FP16_TOLERANCE if precision == "fp16" else 1e-5


def check_precision(precision: str) -> None:
    """The value; which targets take it is checked with the other per-target options (targets/__init__.py)."""
    if precision not in PRECISIONS:
        raise MpackError(f"--precision {precision} is not a precision", f"choose one of {', '.join(PRECISIONS)}")


def halve_precision(onnx_bytes: bytes) -> bytes:
    """The graph with its float32 initializers and computations in float16, inputs and outputs float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_from_string(onnx_bytes)
    weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    if not weights:
        raise MpackError(
            "--precision fp16 has nothing to halve: the model has no float32 weights",
            "its graph computes in float64 or in tree ensembles, which stay as they are; build without --precision",
        )
    halved = convert_float_to_float16(model, keep_io_types=True)
    halved.ir_version = model.ir_version
    return halved.SerializeToString()


class RangeProbe:
    """A session of the halved graph (``run``/``get_outputs``/``get_inputs``, as the scoring core
    uses one) that also records the float16 intermediates that overflow where float32 does not."""

    def __init__(self, halved: bytes, full: bytes) -> None:
        from mpack.handlers.loader import create_session

        self.session = create_session(halved, 1)
        pairs = _shared_half_tensors(halved, full)
        self.names, self.full_names = list(pairs), list(pairs.values())
        self.half = _exposing(halved, self.names)
        self.full = _exposing(full, self.full_names)
        self.overflows: dict[str, float] = {}  # tensor (the float32 graph's name) -> its largest lost magnitude

    def run(self, output_names, feeds):
        if not self.names:
            return self.session.run(output_names, feeds)
        values = self.half.run([*output_names, *self.names], feeds)
        for name, half, full in zip(self.full_names, values[len(output_names) :], self.full.run(self.full_names, feeds)):
            if getattr(half, "dtype", None) != np.float16:
                continue
            full = np.asarray(full, dtype=np.float64)
            lost = np.isfinite(full) & ~np.isfinite(np.asarray(half, dtype=np.float64))
            if lost.any():
                self.overflows[name] = max(self.overflows.get(name, 0.0), float(np.abs(full[lost]).max()))
        return values[: len(output_names)]

    def __getattr__(self, name):
        return getattr(self.session, name)

    def check(self) -> None:
        if self.overflows:
            worst = sorted(self.overflows.items(), key=lambda item: -item[1])
            named = ", ".join(f"'{name}' (up to {value:.3g})" for name, value in worst[:5]) + (f" and {len(worst) - 5} more" if len(worst) > 5 else "")
            raise MpackError(
                f"--precision fp16: {len(worst)} intermediate tensor(s) leave float16's range (65,504) on the check rows and would be inf on a GPU: {named}",
                "keep this model in float32 (drop --precision fp16), or scale its inputs or weights so its activations stay within float16",
            )


def _shared_half_tensors(halved: bytes, full: bytes) -> dict[str, str]:
    """{tensor of the halved graph: the same tensor of the float32 graph}: every intermediate both
    compute, by name, and the value each graph output is cast from (keep_io_types renames it). Types
    are read at run time (only float16 arrays are judged): shape inference does not know onnxruntime's
    fused operators, which the build-time optimization leaves in the graph."""
    import onnx

    half_graph, full_graph = onnx.load_from_string(halved).graph, onnx.load_from_string(full).graph
    outputs = {o.name for o in half_graph.output}
    in_full = {name for node in full_graph.node for name in node.output}
    pairs = {name: name for node in half_graph.node for name in node.output if name in in_full and name not in outputs}
    inputs = {i.name for i in half_graph.input}
    for node in half_graph.node:
        if node.op_type == "Cast" and node.output[0] in outputs and node.input[0] not in inputs:
            pairs[node.input[0]] = node.output[0]
    return pairs


def _exposing(model_bytes: bytes, names: list[str]):
    """A CPU session of the graph with ``names`` added to its outputs (their types left to onnxruntime)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string(model_bytes)
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names if name not in present)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no fusions: every intermediate stays as the graph names it
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
