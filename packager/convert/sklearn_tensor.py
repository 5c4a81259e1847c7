"""A scikit-learn model logged with a tensor signature (trained on a numpy array, so MLflow records
``Tensor('float32', (-1, 256))``): MLflow's pyfunc feeds it one array of that dtype and shape, and
scikit-learn computes in that dtype — float32 stays float32. The graph keeps the tensor (name, dtype,
shape) on the wire and inside (DESIGN.md §11), and the parity gate feeds the original the same array."""

from __future__ import annotations

import numpy as np

from mpack.packager.check.threshold_rows import threshold_records
from mpack.packager.convert.tensor_models import example_tensors
from mpack.packager.source.examples import parity_records, typed_frame
from mpack.packager.source.mlmodel import Column, MLmodel

# A tensor's dtype -> the MLflow type of each of its features (what the check rows are drawn as).
FEATURE_TYPES = {"float32": "float", "float64": "double"}


def matrix_tensor(model: MLmodel) -> dict | None:
    """The signature's one [-1, features] float tensor as {name, dtype, shape}; None for column
    signatures and other tensors (those keep the columns the estimator records)."""
    if model.columns is not None or len(model.tensors) != 1:
        return None
    spec = model.tensors[0]
    shape = spec["shape"]
    if spec["dtype"] not in FEATURE_TYPES or len(shape) != 2 or shape[1] <= 0:
        return None
    return {"name": spec["name"] or "input", "dtype": spec["dtype"], "shape": [-1, shape[1]]}


def feature_columns(tensor: dict) -> tuple[Column, ...]:
    """The tensor's features as columns, for the check rows (threshold rows are drawn per feature)."""
    return tuple(Column(f"f{index}", FEATURE_TYPES[tensor["dtype"]]) for index in range(tensor["shape"][1]))


def tensor_check_request(model: MLmodel, tensor: dict, estimator) -> dict:
    """{"inputs": {name: rows}}: the input example, jittered copies, synthesized rows and rows at the
    model's own split thresholds, as parity rows are for columns."""
    columns = feature_columns(tensor)
    names = [c.name for c in columns]
    example = _example_records(model, tensor, names)

    def as_array(records):
        return typed_frame(columns, records).to_numpy()

    records, _ = parity_records(example, columns, lambda base: threshold_records(estimator, columns, base, as_array), columns_from="the tensor signature")
    return {"inputs": {tensor["name"]: [[record[name] for name in names] for record in records]}}


class TensorReference:
    """The original estimator's answers on the check tensor, fed as MLflow feeds it: one array of
    the signature's dtype (never a DataFrame, whatever it was fitted on)."""

    def __init__(self, estimator, tensor: dict) -> None:
        self.estimator, self.name, self.dtype = estimator, tensor["name"], tensor["dtype"]

    def __call__(self, inputs: dict) -> dict:
        features = np.asarray(inputs[self.name], dtype=self.dtype)
        answers = {"predict": self.estimator.predict(features)}
        if hasattr(self.estimator, "predict_proba"):
            answers["predict_proba"] = self.estimator.predict_proba(features)
        return answers


def _example_records(model: MLmodel, tensor: dict, names: list[str]) -> tuple[dict, ...] | None:
    rows = (example_tensors(model, [tensor["name"]]) or {}).get(tensor["name"])
    try:
        array = np.asarray(rows, dtype=tensor["dtype"]).reshape(-1, len(names)) if rows is not None else None
    except (ValueError, TypeError):
        return None
    if array is None or not array.size:
        return None
    return tuple(dict(zip(names, row)) for row in array.tolist())
