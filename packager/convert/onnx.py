"""ONNX models (the MLflow onnx flavor or a plain .onnx file) pass through unchanged.

The input contract comes from the MLflow column signature when it matches the graph (one 2-D
numeric input of that width: the fast matrix layout), otherwise from the graph's own inputs.
"""

from __future__ import annotations

from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConvertedModel
from mpack.packager.source.mlmodel import MLmodel

ONNX_ELEMENT_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64"}


def from_mlflow_onnx(model: MLmodel, opset_cap: dict | None) -> ConvertedModel:
    flavor = model.flavor("onnx")
    return from_onnx_file(model.path / flavor.get("data", "model.onnx"), model, opset_cap)


def from_onnx_file(path: Path, model: MLmodel | None, opset_cap: dict | None = None) -> ConvertedModel:
    import onnx

    try:
        graph_model = onnx.load(str(path))
        onnx.checker.check_model(graph_model)
    except FileNotFoundError:
        raise MpackError(f"ONNX file {path.name} is missing", "the model directory is incomplete; re-log the model") from None
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise MpackError(f"{path.name} is not a valid ONNX model: {str(exc).splitlines()[0][:200]}", "the file is corrupt or truncated; export it again") from None
    _check_opsets(graph_model, opset_cap)
    initializers = {i.name for i in graph_model.graph.initializer}
    inputs = [tensor_info(i) for i in graph_model.graph.input if i.name not in initializers]
    outputs = [tensor_info(o) for o in graph_model.graph.output]
    unsupported = [f"{t['name']} ({t['dtype']})" for t in inputs if t["dtype"].startswith("unsupported")]
    if unsupported:
        raise MpackError(f"ONNX inputs of unsupported type: {', '.join(unsupported)}", "mpack feeds numeric, boolean and string tensors")
    columns = model.columns if model else None
    signature = {"layout": "tensors", "columns": [], "inputs": inputs, "outputs": outputs}
    if columns and len(inputs) == 1 and len(inputs[0]["shape"]) == 2 and inputs[0]["shape"][1] == len(columns) and inputs[0]["dtype"].startswith("float"):
        signature["layout"] = "matrix"
        signature["columns"] = [{"name": c.name, "type": c.type, "dtype": inputs[0]["dtype"], "allow_missing": True} for c in columns]
    return ConvertedModel(
        onnx_bytes=graph_model.SerializeToString(),
        signature=signature,
        prediction={"default": "predict", "methods": {"predict": {"outputs": [o["name"] for o in outputs]}}},
        flavor="onnx",
        task="generic",
        converter={"onnx": onnx.__version__, "opset": [f"{o.domain or 'ai.onnx'}:{o.version}" for o in graph_model.opset_import]},
        reference=None,
        columns=tuple(columns or ()),
    )


def set_opsets(graph_model, versions: dict[str, int]) -> None:
    """Replace the model's opset imports with one entry a domain, in domain order (byte-identical
    rebuilds)."""
    del graph_model.opset_import[:]
    for domain in sorted(versions):
        entry = graph_model.opset_import.add()
        entry.domain, entry.version = domain, versions[domain]


def tensor_info(value_info) -> dict:
    """Name, dtype and shape (-1 for a variable dimension) of a graph input or output."""
    tensor_type = value_info.type.tensor_type
    dtype = ONNX_ELEMENT_DTYPES.get(tensor_type.elem_type, f"unsupported:{tensor_type.elem_type}")
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    return {"name": value_info.name, "dtype": dtype, "shape": shape}


def _check_opsets(graph_model, cap: dict | None) -> None:
    """A graph newer than the bundle's onnxruntime reads fails at the first cold start: say so now."""
    for opset in graph_model.opset_import if cap else ():
        limit = cap.get(opset.domain or "")
        if limit is not None and opset.version > limit:
            raise MpackError(
                f"the model uses opset {opset.version} of {opset.domain or 'ai.onnx'}, newer than the {limit} this target's onnxruntime reads",
                "build for --python 3.12 or newer (newer onnxruntime), or export the model with a lower opset",
            )
