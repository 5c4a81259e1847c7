"""ONNX graph -> ``model_micro.py``: the graph's operators, node by node, as standard-library Python
evaluated per row (``--runtime micro``).

Why compile instead of interpreting the graph at run time: a 200-tree ensemble walked from node
tables costs ~200 us per row in Python; compiled to nested ``if`` statements it costs ~10 us, and
the bundle ships the module's unchecked-hash .pyc, so loading it is a ~0.1 ms unmarshal instead
of a ~40 ms compile at cold start. The module imports only ``mpack.handlers.micro_kernels``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpack.packager.micro import ops_ml, ops_tensor, ops_trees
from mpack.packager.micro.program import ONNX_DTYPES, Program, Unsupported, Value

MICRO_MODULE = "model_micro.py"
STANDARD = {"": ops_tensor.OPERATORS, "ai.onnx": ops_tensor.OPERATORS}
REGISTRY = {**{(d, op): f for d, table in STANDARD.items() for op, f in table.items()}, **{("ai.onnx.ml", op): f for op, f in {**ops_ml.OPERATORS, **ops_trees.OPERATORS}.items()}}


@dataclass(frozen=True)
class MicroProgram:
    source: str  # the module's text (the bundle's model file)
    operators: tuple[str, ...]  # the operators the graph uses, for the build report
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def contract(self) -> dict:
        """The manifest's ``micro`` field: what the runtime needs to call the module."""
        return {"inputs": list(self.inputs), "outputs": list(self.outputs), "operators": list(self.operators)}


def supported_operators() -> list[str]:
    return sorted({op for _, op in REGISTRY})


def compile_graph(onnx_bytes: bytes, input_shapes: dict | None = None, header: str = "A model compiled by mpack --runtime micro.") -> MicroProgram:
    """The module for the graph, or ``Unsupported`` naming the first operator, attribute or shape
    the micro runtime does not evaluate. ``input_shapes`` (the signature's, -1 for the batch axis)
    fill in sizes the graph leaves open."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    program = Program()
    initialized = set()
    for tensor in graph.initializer:
        program.values[tensor.name] = _initializer(tensor)
        initialized.add(tensor.name)
    inputs = [i for i in graph.input if i.name not in initialized]
    parameters = []
    for index, graph_input in enumerate(inputs):
        parameter = f"x{index}"
        parameters.append(parameter)
        program.values[graph_input.name] = _input_value(graph_input, parameter, (input_shapes or {}).get(graph_input.name))
    used = []
    for node in graph.node:
        emitter = REGISTRY.get((node.domain, node.op_type))
        if emitter is None:
            domain = f"{node.domain}:" if node.domain not in ("", "ai.onnx") else ""
            raise Unsupported(f"operator {domain}{node.op_type} is not supported (supported: {', '.join(supported_operators())})")
        used.append(node.op_type)
        values = [program.get(name) if name else None for name in node.input]
        outputs = emitter(program, values, _attributes(node))
        for name, value in zip(node.output, outputs):
            if name:
                program.values[name] = value
    results = [program.get(o.name) for o in graph.output]
    if any(not r.is_row for r in results):
        raise Unsupported("an output that does not depend on the input")
    source = program.source(parameters, results, header)
    try:
        compile(source, MICRO_MODULE, "exec")
    except (SyntaxError, RecursionError, MemoryError) as error:
        raise Unsupported(f"the compiled module is not valid Python ({type(error).__name__}: {error})") from None
    return MicroProgram(source, tuple(dict.fromkeys(used)), tuple(i.name for i in inputs), tuple(o.name for o in graph.output))


def _initializer(tensor) -> Value:
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor)
    dtype = ONNX_DTYPES.get(tensor.data_type)
    if dtype is None:
        raise Unsupported(f"initializer {tensor.name!r} of ONNX type {tensor.data_type}")
    if dtype == "string":
        array = array.astype(object)
    return Value(f"<{tensor.name}>", dtype, tuple(array.shape), array)


def _input_value(graph_input, parameter: str, declared) -> Value:
    tensor = graph_input.type.tensor_type
    dtype = ONNX_DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise Unsupported(f"input {graph_input.name!r} of ONNX type {tensor.elem_type}")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    if declared and len(declared) == len(dims):
        dims = [d if d != -1 else (w if w not in (None, -1) else -1) for d, w in zip(dims, declared)]
    if not dims or -1 in dims[1:]:
        raise Unsupported(f"input {graph_input.name!r} of shape {dims} (a batch axis first, then known sizes)")
    return Value(parameter, dtype, tuple(dims[1:]))


def _attributes(node) -> dict:
    from onnx import helper

    attrs = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8") for v in value]
        attrs[attribute.name] = value
    return attrs
