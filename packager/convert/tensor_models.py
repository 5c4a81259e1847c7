"""What tensor models (PyTorch, Keras) share: names for their inputs and outputs, and the tensors the
parity gate feeds them — the logged input example, jittered copies of it and wider random values,
at least 2,000 rows along the batch axis (fewer only when one row is large)."""

from __future__ import annotations

import json

import numpy as np
from mpack.infra.errors import MpackError

CHECK_ROWS = 2000
MAX_CHECK_ELEMENTS = 4_000_000  # per input: a 2,000-image check would not fit in a JSON pipe
NUMPY_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool"}


def input_names(tensors) -> list[str]:
    if len(tensors) == 1:
        return [tensors[0]["name"] or "input"]
    return [spec["name"] or f"input_{index}" for index, spec in enumerate(tensors)]


def output_names(outputs) -> list[str]:
    if not outputs:
        return ["output"]
    if len(outputs) == 1:
        return [outputs[0]["name"] or "output"]
    return [spec["name"] or f"output_{index}" for index, spec in enumerate(outputs)]


def rename_graph_values(graph, inputs: list[str], outputs: list[str]) -> None:
    """Graph inputs and outputs renamed in order (exporters choose their own names)."""
    initializers = {i.name for i in graph.graph.initializer}
    mapping = {}
    for value, name in zip([i for i in graph.graph.input if i.name not in initializers], inputs):
        mapping[value.name] = name
    for value, name in zip(graph.graph.output, outputs):
        mapping[value.name] = name
    mapping = {old: new for old, new in mapping.items() if old != new}
    if not mapping:
        return
    for value in list(graph.graph.input) + list(graph.graph.output):
        value.name = mapping.get(value.name, value.name)
    for node in graph.graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]


class TensorCheck:
    """The parity gate's tensor request for a model's signature, and its arrays."""

    def __init__(self, tensors, example: dict | None, seed: int = 0) -> None:
        self.names = input_names(tensors)
        rng = np.random.default_rng(seed)
        widths = [int(np.prod([d for d in spec["shape"][1:] if d > 0] or [1])) for spec in tensors]
        rows = max(16, min(CHECK_ROWS, MAX_CHECK_ELEMENTS // max(widths)))
        data = {}
        for name, spec in zip(self.names, tensors):
            base = None if example is None else example.get(name)
            data[name] = _rows(spec, base, rows, rng).tolist()
        self.document = {"inputs": data}
        self.rows = rows

    def arrays(self, tensors, data: dict | None = None) -> list[np.ndarray]:
        data = data if data is not None else self.document["inputs"]
        return [np.asarray(data[name], dtype=_dtype(spec)) for name, spec in zip(self.names, tensors)]


def check_request(model) -> TensorCheck:
    return TensorCheck(model.tensors, example_tensors(model, input_names(model.tensors)))


def tensor_answers(answer, names: list[str]) -> dict:
    """A module's output (tensor, tuple or dict of them) as the parity reference."""
    if isinstance(answer, dict):
        answer = list(answer.values())
    if not isinstance(answer, (list, tuple)):
        answer = [answer]
    arrays = [a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a) for a in answer]
    if len(arrays) == 1:
        return {"predict": arrays[0]}
    return {"predict": dict(zip(names, arrays))}


def _dtype(spec) -> str:
    dtype = NUMPY_DTYPES.get(spec["dtype"])
    if dtype is None:
        raise MpackError(f"tensor input {spec['name'] or 'input'} of dtype {spec['dtype']} is not supported", f"supported tensor dtypes: {', '.join(NUMPY_DTYPES)}")
    return dtype


def _rows(spec, base, rows: int, rng) -> np.ndarray:
    """Example rows first, then jittered copies of them, then random rows in [-3, 3]."""
    dtype = _dtype(spec)
    shape = [d if d > 0 else 4 for d in spec["shape"][1:]]
    example = None
    if base is not None:
        try:
            example = np.asarray(base, dtype=dtype).reshape([-1, *shape])
        except (ValueError, TypeError):
            example = None
    if dtype == "bool":
        random = rng.random((rows, *shape)) < 0.5
    elif dtype.startswith(("int", "uint")):
        high = int(example.max()) + 1 if example is not None and example.size else 4
        random = rng.integers(0, max(high, 2), (rows, *shape)).astype(dtype)
    else:
        random = rng.uniform(-3, 3, (rows, *shape)).astype(dtype)
    if example is None or not example.size:
        return random
    if dtype.startswith("float"):
        picks = example[rng.integers(0, len(example), rows)]
        jittered = (picks * (1 + rng.normal(0, 0.05, picks.shape)) + rng.normal(0, 0.01, picks.shape)).astype(dtype)
        random[: rows // 2] = jittered[: rows // 2]
    random[: len(example)] = example[:rows]
    return random


def example_tensors(model, names: list[str]) -> dict | None:
    """The logged input example as {input name: data}, or None."""
    path = model.path / "input_example.json"
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except ValueError:
        return None
    if isinstance(document, dict) and "inputs" in document:
        document = document["inputs"]
    if isinstance(document, dict):
        return {name: document.get(name) for name in names}
    return {names[0]: document} if len(names) == 1 else None
