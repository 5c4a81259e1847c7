"""Reading an MLflow model directory: flavors, column signature and input example.

Plain YAML/JSON reading, so a local model directory needs no tracking server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from mpack.infra.errors import MpackError

SUPPORTED_COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string")
# What MLflow's pyfunc feeds a model for each column type (pandas), and the tensor dtypes a native
# model's columns are fed in.
PANDAS_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "boolean": "bool", "string": "object"}
NATIVE_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "boolean": "bool", "string": "string"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # MLflow ColSpec type


@dataclass(frozen=True)
class MLmodel:
    path: Path  # the model directory
    flavors: dict
    columns: tuple[Column, ...] | None  # None: no column signature
    input_example: tuple[dict, ...] | None  # records
    tensors: tuple[dict, ...] = ()  # a tensor signature's inputs: name (or None), dtype, shape
    tensor_outputs: tuple[dict, ...] = ()  # ... and its outputs
    mlflow_version: str | None = None  # the MLflow that logged it (a custom pyfunc needs it to load)

    def flavor(self, name: str) -> dict | None:
        return self.flavors.get(name)

    @property
    def custom_pyfunc(self) -> bool:
        """A custom pyfunc model (a PythonModel or a loader_module): python_function and nothing else."""
        return set(self.flavors) == {"python_function"}


def read_mlmodel(model_dir: Path) -> MLmodel:
    path = model_dir / "MLmodel"
    if not path.is_file():
        raise MpackError(
            f"folder {model_dir} has no MLmodel file, so it is not an MLflow model directory",
            "point --model at the folder that contains MLmodel (as saved by mlflow.<flavor>.save_model), or at a .onnx file",
        )
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MpackError(f"{path} is not valid YAML: {' '.join(str(exc).split())}", "the model directory is corrupt; re-log the model") from None
    if not isinstance(document, dict):
        raise MpackError(f"{path} is not an MLmodel document (a YAML mapping with 'flavors'); it holds a {type(document).__name__}", "the model directory is corrupt; re-log the model")
    flavors = document.get("flavors") or {}
    if not isinstance(flavors, dict) or not flavors:
        raise MpackError(f"{path} lists no flavors", "the model directory is corrupt; re-log the model")
    signature = document.get("signature") or {}
    if not isinstance(signature, dict):
        raise MpackError(f"{path}: 'signature' is not a mapping", "the model directory is corrupt; re-log the model")
    columns = _columns(signature, path)
    tensors = tensor_specs(signature.get("inputs"), path)
    outputs = tensor_specs(signature.get("outputs"), path)
    logged_by = str(document["mlflow_version"]) if document.get("mlflow_version") else None
    return MLmodel(model_dir, flavors, columns, _input_example(model_dir, document, columns), tensors, outputs, logged_by)


def tensor_specs(raw, path: Path) -> tuple[dict, ...]:
    """``[{"type": "tensor", "tensor-spec": {"dtype", "shape"}, "name"?}]`` as plain specs; () for a
    column signature or none."""
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return ()
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) and s.get("type") == "tensor" for s in specs):
        return ()
    tensors = []
    for spec in specs:
        tensor = spec.get("tensor-spec") or {}
        if not isinstance(tensor.get("dtype"), str) or not isinstance(tensor.get("shape"), list):
            raise MpackError(f"{path}: a tensor spec without dtype and shape: {json.dumps(spec)[:200]}", "the model directory is corrupt; re-log the model with a signature")
        tensors.append({"name": spec.get("name"), "dtype": tensor["dtype"], "shape": [int(d) for d in tensor["shape"]]})
    return tuple(tensors)


def _columns(signature: dict, path: Path) -> tuple[Column, ...] | None:
    raw = signature.get("inputs")
    if not raw:
        return None
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise MpackError(f"{path}: the signature's inputs are not valid JSON ({exc})", "the model directory is corrupt; re-log the model with a signature") from None
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise MpackError(f"{path}: the signature's inputs are not a list of column specs", "the model directory is corrupt; re-log the model with a signature")
    if not specs or any("name" not in s or s.get("type") == "tensor" for s in specs):
        return None  # tensor signature: the model's own input shapes are used
    unsupported = [f"{s['name']} ({s.get('type')})" for s in specs if s.get("type") not in SUPPORTED_COLUMN_TYPES]
    if unsupported:
        raise MpackError(
            f"signature column type not supported: {', '.join(unsupported)}",
            f"supported column types: {', '.join(SUPPORTED_COLUMN_TYPES)}",
        )
    return tuple(Column(s["name"], s["type"]) for s in specs)


def _input_example(model_dir: Path, document: dict, columns) -> tuple[dict, ...] | None:
    info = document.get("saved_input_example_info") or {}
    artifact = info.get("artifact_path")
    if not artifact or not (model_dir / artifact).is_file():
        return None
    try:
        example = json.loads((model_dir / artifact).read_text())
    except ValueError:
        return None
    return records_from_json(example, [c.name for c in columns] if columns else None)


def records_from_json(document, column_names: list[str] | None) -> tuple[dict, ...] | None:
    """Records from the JSON shapes MLflow and users write examples in (split, records, requests)."""
    if isinstance(document, dict):
        for key in ("dataframe_split", "dataframe_records", "inputs", "instances"):
            if key in document:
                return records_from_json(document[key], column_names)
        if "data" in document and isinstance(document["data"], list):
            names = document.get("columns") or column_names
            if not names:
                return None
            return tuple(dict(zip(names, row)) for row in document["data"])
        if document and all(isinstance(v, list) for v in document.values()):  # columnar
            return tuple(dict(zip(document, row)) for row in zip(*document.values()))
        return None
    if isinstance(document, list) and document:
        if all(isinstance(r, dict) for r in document):
            return tuple(document)
        if column_names and all(isinstance(r, list) and len(r) == len(column_names) for r in document):
            return tuple(dict(zip(column_names, r)) for r in document)
    return None
