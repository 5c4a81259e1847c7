"""Models logged with a tensor signature (trained on a numpy array, so MLflow records
``Tensor('float32', (-1, 256))``): MLflow's pyfunc feeds them one array of that dtype and shape, and
scikit-learn then computes in that dtype — float32 stays float32. Converters build such a model over
its features as columns (f0, f1, ... or the model's own feature names), typed by the tensor's dtype;
``as_tensor_model`` then gives the bundle the tensor itself — name, dtype, shape — on the wire and
as the graph's input (DESIGN.md §11), and the parity gate feeds the original the same array."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from mpack.packager.convert.converted import ConvertedModel
from mpack.packager.convert.tensor_models import example_tensors
from mpack.packager.source.examples import parity_records
from mpack.packager.source.mlmodel import Column, MLmodel

# A tensor's dtype -> the MLflow type of each of its features (what the check rows are drawn as).
FEATURE_TYPES = {"float32": "float", "float64": "double"}


def matrix_tensor(model: MLmodel | None) -> dict | None:
    """The signature's one [-1, features] float tensor as {name, dtype, shape}; None for column
    signatures and other tensors (image models keep their own shapes)."""
    if model is None or model.columns is not None or len(model.tensors) != 1:
        return None
    spec = model.tensors[0]
    shape = spec["shape"]
    if spec["dtype"] not in FEATURE_TYPES or len(shape) != 2 or shape[1] <= 0:
        return None
    return {"name": spec["name"] or "input", "dtype": spec["dtype"], "shape": [-1, shape[1]]}


def feature_columns(tensor: dict, names=None) -> tuple[Column, ...]:
    """The tensor's features as columns typed by its dtype, named as the model names its features
    when it does (its predict may check them), else f0, f1, ..."""
    width = tensor["shape"][1]
    names = [str(n) for n in names] if names is not None and len(names) == width else [f"f{index}" for index in range(width)]
    return tuple(Column(name, FEATURE_TYPES[tensor["dtype"]]) for name in names)


def as_tensor_model(converted: ConvertedModel, model: MLmodel, tensor: dict) -> ConvertedModel:
    """A model converted over the tensor's feature columns (one [rows, features] matrix input), as
    MLflow serves it: one input named and typed as the tensor (a Cast inside the graph where the
    model computes in another dtype), checked on the tensor's rows: the input example, jittered
    and synthesized rows, and rows at the model's own decision thresholds."""
    import onnx

    graph = onnx.load_from_string(converted.onnx_bytes)
    _feed_tensor(graph, tensor)
    names = [c.name for c in converted.columns]
    records, _ = parity_records(_example_records(model, tensor, names), converted.columns, converted.boundary_records, columns_from="the tensor signature")
    original = converted.reference

    def reference(inputs: dict) -> dict:
        return original([dict(zip(names, row)) for row in inputs[tensor["name"]]])

    return replace(
        converted,
        onnx_bytes=graph.SerializeToString(),
        signature={"layout": "tensors", "columns": [], "inputs": [tensor], "outputs": converted.signature["outputs"]},
        reference=reference,
        columns=(),
        boundary_records=None,
        tensor_check={"inputs": {tensor["name"]: [[record[name] for name in names] for record in records]}},
    )


def _feed_tensor(graph, tensor: dict) -> None:
    """The graph's one input renamed to the tensor's name and typed as its dtype; a Cast to the
    dtype the model computes in (XGBoost: float32; LightGBM: float64) follows where they differ."""
    from onnx import TensorProto, helper

    initializers = {i.name for i in graph.graph.initializer}
    (value,) = [i for i in graph.graph.input if i.name not in initializers]
    wire = TensorProto.FLOAT if tensor["dtype"] == "float32" else TensorProto.DOUBLE
    computed = value.type.tensor_type.elem_type
    read_as = tensor["name"] if computed == wire else f"{tensor['name']}_as_computed"
    for node in graph.graph.node:
        node.input[:] = [read_as if name == value.name else name for name in node.input]
    if computed != wire:
        graph.graph.node.insert(0, helper.make_node("Cast", [tensor["name"]], [read_as], to=computed, name="mpack_tensor_cast"))
    value.name = tensor["name"]
    value.type.tensor_type.elem_type = wire


def _example_records(model: MLmodel, tensor: dict, names: list[str]) -> tuple[dict, ...] | None:
    rows = (example_tensors(model, [tensor["name"]]) or {}).get(tensor["name"])
    try:
        array = np.asarray(rows, dtype=tensor["dtype"]).reshape(-1, len(names)) if rows is not None else None
    except (ValueError, TypeError):
        return None
    if array is None or not array.size:
        return None
    return tuple(dict(zip(names, row)) for row in array.tolist())
