"""The float32 variant of a graph that computes in float64 (``--precision auto|fp32``).

scikit-learn fed double columns computes its scalers, linear models and networks in float64, and the
converted graph does too (DESIGN.md §11). float32 often gives the same answers within the tolerance at
a fraction of the cost, so the precision stage builds this variant, runs it through the same parity
gate as the float64 graph, measures both and ships the one that passes and is faster.

The variant keeps the graph's interface (the same input and output names, dtypes and shapes: float64
in, float64 out) and computes in float32 inside: one Cast per double input at entry, double
initializers and Constant values in float32, ``Cast(to=DOUBLE)`` inside made ``to=FLOAT``, and a Cast
back to double per double output at exit.

What feeds a tree ensemble stays as it is: scikit-learn computes its preprocessing in float64 and
casts to float32 only inside the tree, and rounding that preprocessing to float32 first moves rows
across split thresholds (§11). Double arithmetic there is scikit-learn's own, so it neither counts as
"computes in float64" nor is rewritten.

Give it the converted graph, before ``optimize_graph``: shape inference (which types every value) does
not know onnxruntime's fused operators.
"""

from __future__ import annotations

import numpy as np
from mpack.infra.errors import MpackError

DOUBLE, FLOAT = 11, 1  # onnx.TensorProto.DOUBLE, .FLOAT
TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")
# Operators that move, select or compare values without arithmetic: float64 there is not worth measuring.
PASSIVE_OPS = frozenset(
    {
        "Cast", "CastLike", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Shape", "Size", "Gather", "GatherElements",
        "GatherND", "Slice", "Concat", "Split", "Transpose", "Expand", "Tile", "ArrayFeatureExtractor", "ArgMax", "ArgMin", "Where",
        "IsNaN", "IsInf", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "ZipMap", "Constant",
        "ConstantOfShape", "Imputer",
    }
)  # fmt: skip
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
DTYPE_ATTRIBUTES = ("to", "dtype")  # Cast, RandomNormal, EyeLike...: the type a node makes


class Float32Unavailable(MpackError):
    """The graph cannot compute in float32; ``op`` names the operator that stops it (None: nothing to do).
    The build ships the float64 graph."""

    def __init__(self, message: str, op: str | None = None) -> None:
        super().__init__(message, "the float64 graph ships as it is")
        self.op = op


def computes_in_float64(onnx_bytes: bytes) -> bool:
    """Whether the graph does arithmetic on float64 tensors outside the inputs of its tree ensembles."""
    model, types = _typed(onnx_bytes, strict=False)
    kept = _feeding_trees(model.graph)
    return any(_arithmetic_in_double(node, types) for index, node in enumerate(model.graph.node) if index not in kept)


def float32_variant(onnx_bytes: bytes) -> bytes:
    """The graph computing in float32 inside, its float64 interface unchanged; Float32Unavailable
    (naming the operator) when it cannot be, so the build ships float64."""
    from onnx import helper, numpy_helper

    model, types = _typed(onnx_bytes)
    graph = model.graph
    kept = _feeding_trees(graph)
    converted = [node for index, node in enumerate(graph.node) if index not in kept]
    if not any(_arithmetic_in_double(node, types) for node in converted):
        raise Float32Unavailable("the graph computes in float64 nowhere outside its tree ensembles' inputs: no float32 variant to make")
    for node in converted:
        _refuse_unconvertible(node, types)

    initializers = {t.name: t for t in graph.initializer}
    inputs = {i.name for i in graph.input} - initializers.keys()
    produced_by_kept = {name for index, node in enumerate(graph.node) if index in kept for name in node.output}
    kept_inputs = {name for index, node in enumerate(graph.node) if index in kept for name in node.input}
    double_outputs = {o.name for o in graph.output if types.get(o.name) == DOUBLE and o.name not in inputs and o.name not in produced_by_kept}
    at_exit = {name: f"{name}_mpack_float32" for name in double_outputs}

    renamed: dict[str, str] = {}  # a double value from outside the converted part -> its float32 copy
    entry_casts, new_initializers = [], []
    for node in converted:
        for position, name in enumerate(node.input):
            if not name or types.get(name) != DOUBLE:
                continue
            if name in initializers:
                if name in kept_inputs:  # shared with a tree's preprocessing, which keeps the double one
                    if name not in renamed:
                        renamed[name] = f"{name}_mpack_float32"
                        new_initializers.append(numpy_helper.from_array(_as_float32(numpy_helper.to_array(initializers[name])), renamed[name]))
                    node.input[position] = renamed[name]
                continue
            if name in inputs or name in produced_by_kept:
                if name not in renamed:
                    renamed[name] = f"{name}_mpack_float32"
                    entry_casts.append(helper.make_node("Cast", [name], [renamed[name]], to=FLOAT, name=f"mpack_float32_{name}"))
                node.input[position] = renamed[name]
        node.input[:] = [at_exit.get(name, name) for name in node.input]
        node.output[:] = [at_exit.get(name, name) for name in node.output]
        _float_attributes(node)
    converted_inputs = {name for node in converted for name in node.input}
    for tensor in graph.initializer:
        if tensor.data_type == DOUBLE and tensor.name in converted_inputs and tensor.name not in kept_inputs:
            tensor.CopyFrom(numpy_helper.from_array(_as_float32(numpy_helper.to_array(tensor)), tensor.name))
    graph.initializer.extend(new_initializers)

    exit_casts = [helper.make_node("Cast", [at_exit[o.name]], [o.name], to=DOUBLE, name=f"mpack_float64_{o.name}") for o in graph.output if o.name in at_exit]
    nodes = entry_casts + list(graph.node) + exit_casts
    del graph.node[:]
    graph.node.extend(nodes)
    _topologically_sorted(graph)  # an entry cast of a kept node's value goes after its producer
    return _checked(model, onnx_bytes)


def _typed(onnx_bytes: bytes, strict: bool = True):
    """The model and {value name: element type} by onnx's shape inference: strict (every value typed,
    or Float32Unavailable) for the rewrite; lenient for the question whether there is float64
    arithmetic at all (a value onnx cannot type — a tree ensemble's output in ai.onnx.ml 5 — is not
    counted as float64, so such a graph ships as converted)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=strict)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise Float32Unavailable(f"onnx cannot type the graph's values: {str(exc).splitlines()[0][:200]}") from None
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output] if v.type.HasField("tensor_type")}
    types.update({t.name: t.data_type for t in graph.initializer})
    for v in [*graph.value_info, *graph.input, *graph.output]:
        if not v.type.HasField("tensor_type") and _holds_double(v.type):
            types[v.name] = -1  # a sequence or map holding doubles
    model.graph.ClearField("value_info")
    return model, types


def _holds_double(value_type) -> bool:
    """Whether a sequence, map or optional type holds float64 tensors, at any depth."""
    kind = value_type.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        return getattr(value_type, kind).elem_type == DOUBLE
    inner = getattr(value_type, kind, None) if kind else None
    inner = getattr(inner, "elem_type", None) or getattr(inner, "value_type", None)
    return inner is not None and _holds_double(inner)


def _feeding_trees(graph) -> set[int]:
    """Indexes of the tree ensembles and every node whose values reach their inputs."""
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output}
    pending = [index for index, node in enumerate(graph.node) if node.op_type in TREE_OPS]
    kept = set()
    while pending:
        index = pending.pop()
        if index in kept:
            continue
        kept.add(index)
        pending.extend(producer[name] for name in graph.node[index].input if name in producer)
    return kept


def _arithmetic_in_double(node, types) -> bool:
    return node.op_type not in PASSIVE_OPS and any(types.get(name) in (DOUBLE, -1) for name in [*node.input, *node.output] if name)


def _refuse_unconvertible(node, types) -> None:
    import onnx

    label = f"{node.op_type} ({node.domain or 'ai.onnx'}) '{node.name}'"
    touches_double = any(types.get(name) in (DOUBLE, -1) for name in [*node.input, *node.output] if name)
    if any(types.get(name) == -1 for name in [*node.input, *node.output] if name):
        raise Float32Unavailable(f"{label} passes float64 values in a sequence or map, which the float32 variant does not rewrite", node.op_type)
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute) and touches_double:
        raise Float32Unavailable(f"{label} holds a subgraph, which the float32 variant does not rewrite", node.op_type)
    if node.domain not in STANDARD_DOMAINS and touches_double:
        raise Float32Unavailable(f"{label} is not a standard ONNX operator: its float32 form is unknown", node.op_type)
    if node.domain == "ai.onnx.ml":
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == DOUBLE:
                raise Float32Unavailable(f"{label} holds float64 values in its attribute '{attribute.name}'", node.op_type)


def _float_attributes(node) -> None:
    """Constant values and the types Cast and friends make: float64 -> float32 (standard domain)."""
    from onnx import numpy_helper

    if node.domain not in ("", "ai.onnx"):
        return
    for attribute in node.attribute:
        if attribute.name in DTYPE_ATTRIBUTES and attribute.i == DOUBLE:
            attribute.i = FLOAT
        elif attribute.t.data_type == DOUBLE:
            attribute.t.CopyFrom(numpy_helper.from_array(_as_float32(numpy_helper.to_array(attribute.t)), attribute.t.name))


def _as_float32(values: np.ndarray) -> np.ndarray:
    """float64 -> float32, finite values beyond float32's range clamped to its largest (a bound such
    as 1.8e308 must not become inf and then nan in a product)."""
    limit = np.finfo(np.float32).max
    return np.where(np.isfinite(values), np.clip(values, -limit, limit), values).astype(np.float32)


def _topologically_sorted(graph) -> None:
    """Nodes ordered so each comes after the producers of its inputs, in their order otherwise."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    remaining, ordered = list(graph.node), []
    while remaining:
        ready = [node for node in remaining if all(name in available for name in node.input)]
        if not ready:
            raise Float32Unavailable(f"the rewritten graph has a node whose input nothing produces: {remaining[0].op_type} '{remaining[0].name}'", remaining[0].op_type)
        for node in ready:
            available.update(node.output)
        ordered += ready
        remaining = [node for node in remaining if node not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def _checked(model, original: bytes) -> bytes:
    """The variant, refused unless onnx's full check passes, its interface is the original's and
    onnxruntime loads it (an operator without a float32 kernel is named)."""
    import onnx
    from mpack.handlers.loader import ModelLoadError, create_session

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise Float32Unavailable(f"the float32 variant fails onnx's check: {str(exc).splitlines()[0][:300]}", _named_op(model, str(exc))) from None
    before = onnx.load_from_string(original).graph
    if _interface(before) != _interface(model.graph):
        raise Float32Unavailable("the float32 variant would change the graph's inputs or outputs")
    variant = model.SerializeToString()
    try:
        create_session(variant, 1)
    except ModelLoadError as exc:  # an operator without a float32 kernel, say
        raise Float32Unavailable(f"the float32 variant: {str(exc)[:300]}", _named_op(model, str(exc))) from None
    return variant


def _interface(graph) -> list:
    initializers = {t.name for t in graph.initializer}
    return [(v.name, v.type.SerializeToString()) for v in graph.input if v.name not in initializers] + [("->", v.name, v.type.SerializeToString()) for v in graph.output]


def _named_op(model, message: str) -> str | None:
    """The operator an error message names (by node name or operator type), if any."""
    named = [node.op_type for node in model.graph.node if node.name and node.name in message]
    return named[0] if named else next((node.op_type for node in model.graph.node if node.op_type in message), None)
