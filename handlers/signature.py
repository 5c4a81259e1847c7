"""The model's input contract, read from the manifest, and the conversion of request values to tensors.

Three layouts, chosen at build time:
- ``matrix``: all columns numeric, fed as one [rows, columns] tensor (fastest);
- ``columns``: one [rows, 1] tensor per column (mixed numeric/string tables, ColumnTransformer);
- ``tensors``: raw named tensors (ONNX models without a column signature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import RequestError

TENSOR_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
    "string": np.object_,
}
_NUMBERS = frozenset((int, float))
_INTEGERS = frozenset((int,))
_FLOATING = ("double", "float")
MISSING_STRING = ""  # fed for null in a string column whose model treats it as an unknown category


@dataclass(frozen=True)
class ColumnSpec:
    """A named column: ``type`` is the MLflow type requests are validated against, ``dtype`` the
    tensor type it is fed to the model as (sklearn graphs compute in float32)."""

    name: str
    type: str
    dtype: str = "float32"
    allow_missing: bool = False


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple  # -1 (or None) for a variable dimension


@dataclass(frozen=True)
class InputSignature:
    layout: str  # "matrix" | "columns" | "tensors"
    columns: tuple[ColumnSpec, ...]
    tensors: tuple[TensorSpec, ...]

    @classmethod
    def from_manifest(cls, signature: dict) -> "InputSignature":
        columns = tuple(
            ColumnSpec(c["name"], c["type"], c["dtype"], bool(c.get("allow_missing"))) for c in signature.get("columns", ())
        )
        tensors = tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in signature["inputs"])
        return cls(signature["layout"], columns, tensors)

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def column_index(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.column_names)}

    def describe(self) -> dict:
        """The input contract as clients see it (for /version and error messages)."""
        if self.layout == "tensors":
            return {"inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in self.tensors]}
        return {"columns": [{"name": c.name, "type": c.type} for c in self.columns]}


def _bad_value(column: ColumnSpec, values: list, expected: str) -> RequestError:
    for row, value in enumerate(values):
        if not _value_fits(column, value):
            shown = "null" if value is None else repr(value)[:60]
            return RequestError(
                f"column '{column.name}' expects {expected}, got {shown} in row {row}",
                error_code="INVALID_PARAMETER_VALUE",
            )
    return RequestError(f"column '{column.name}' expects {expected}", error_code="INVALID_PARAMETER_VALUE")


def _value_fits(column: ColumnSpec, value) -> bool:
    kind = column.type
    if value is None:
        return (kind in _FLOATING or kind == "string") and column.allow_missing
    value_type = type(value)
    if kind in _FLOATING:
        if value_type not in _NUMBERS:
            return False
        return not (value_type is float and math.isnan(value)) or column.allow_missing
    if kind in ("long", "integer"):
        return value_type is int or (value_type is float and value.is_integer())
    if kind == "boolean":
        return value_type is bool
    return value_type is str


_EXPECTED = {
    "double": "a number",
    "float": "a number",
    "long": "an integer",
    "integer": "an integer",
    "boolean": "true or false",
    "string": "a string",
}


def column_array(column: ColumnSpec, values: list) -> np.ndarray:
    """One column's JSON values as a 1-D array of the column's dtype, or a 400 naming the column."""
    kind = column.type
    types = set(map(type, values))
    if kind in _FLOATING:
        if type(None) in types:
            if not column.allow_missing:
                raise _missing(column, values)
            values = [math.nan if v is None else v for v in values]
            types.discard(type(None))
        if not types <= _NUMBERS:
            raise _bad_value(column, values, _EXPECTED[kind])
        try:
            array = np.asarray(values, dtype=TENSOR_DTYPES[column.dtype])
        except OverflowError:  # an integer beyond float64 (a 400-digit number)
            raise _out_of_range(column, values) from None
        finite = np.isfinite(array)
        if not finite.all():
            if np.isinf(array).any():
                raise _out_of_range(column, values)
            if not column.allow_missing:
                raise _missing(column, values)
        return array
    if kind in ("long", "integer"):
        if not types <= _INTEGERS:
            if any(not _value_fits(column, v) for v in values):
                raise _bad_value(column, values, _EXPECTED[kind])
        try:
            return np.asarray(values, dtype=TENSOR_DTYPES[column.dtype])
        except (OverflowError, ValueError, TypeError):
            raise _out_of_range(column, values) from None
    expected_type = bool if kind == "boolean" else str
    if types != {expected_type}:
        if kind == "string" and column.allow_missing and types <= {str, type(None)}:
            # The model treats a missing category as an unknown one (checked at build time).
            values = [MISSING_STRING if v is None else v for v in values]
        else:
            raise _bad_value(column, values, _EXPECTED[kind])
    return np.asarray(values, dtype=TENSOR_DTYPES[column.dtype])


def _out_of_range(column: ColumnSpec, values: list) -> RequestError:
    """A number the column's dtype cannot hold (1e39 in float32, 1e400, a 400-digit integer)."""
    limit = {"float32": "float32 (about ±3.4e38)", "float64": "float64 (about ±1.8e308)"}.get(column.dtype, column.dtype)
    for row, value in enumerate(values):
        if type(value) in _NUMBERS and not _representable(value, column.dtype):
            shown = repr(value) if len(repr(value)) <= 40 else f"a {len(str(abs(value)))}-digit number"
            return RequestError(f"column '{column.name}' has {shown} in row {row}, outside the range of {limit}", error_code="INVALID_PARAMETER_VALUE")
    return RequestError(f"column '{column.name}' has a value outside the range of {limit}", error_code="INVALID_PARAMETER_VALUE")


def _representable(value, dtype: str) -> bool:
    try:
        return bool(np.isfinite(np.asarray(value, dtype=TENSOR_DTYPES[dtype])))
    except (OverflowError, ValueError, TypeError):
        return False


def _missing(column: ColumnSpec, values: list) -> RequestError:
    for row, value in enumerate(values):
        if value is None or (type(value) is float and math.isnan(value)):
            return RequestError(
                f"column '{column.name}' has a missing value (null/NaN) in row {row}, "
                "and the model does not accept missing values there",
                error_code="INVALID_PARAMETER_VALUE",
            )
    return RequestError(f"column '{column.name}' has a missing value", error_code="INVALID_PARAMETER_VALUE")


def matrix_feed(signature: InputSignature, rows: list[list]) -> np.ndarray:
    """Rows (already in signature column order) as one 2-D tensor; one pass when all values are plain."""
    tensor = signature.tensors[0]
    dtype = TENSOR_DTYPES[tensor.dtype]
    types = {type(v) for row in rows for v in row}
    if types <= _NUMBERS:
        try:
            array = np.asarray(rows, dtype=dtype)
        except OverflowError:
            array = None
        if array is not None and np.isfinite(array).all():
            return array
    # Slow path: find and name the offending column (or accept allowed missing values).
    columns = list(zip(*rows))
    array = np.empty((len(rows), len(signature.columns)), dtype=dtype)
    for index, column in enumerate(signature.columns):
        array[:, index] = column_array(column, list(columns[index]))
    return array


def column_feeds(signature: InputSignature, rows: list[list]) -> dict[str, np.ndarray]:
    """Rows as one [rows, 1] tensor per column, named as the column."""
    columns = list(zip(*rows))
    return {
        column.name: column_array(column, list(columns[index])).reshape(-1, 1)
        for index, column in enumerate(signature.columns)
    }


def tensor_array(spec: TensorSpec, data) -> np.ndarray:
    """A nested JSON list as a tensor of the input's dtype and rank, or a 400 naming the input."""
    dtype = TENSOR_DTYPES.get(spec.dtype, np.float32)
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RequestError(
            f"input '{spec.name}' must be a rectangular array of {spec.dtype}: {str(exc)[:120]}",
            error_code="INVALID_PARAMETER_VALUE",
        ) from None
    if dtype is np.object_ and not all(type(v) is str for v in array.ravel()):
        raise RequestError(f"input '{spec.name}' must contain only strings", error_code="INVALID_PARAMETER_VALUE")
    expected = spec.shape
    if expected and array.ndim == len(expected) - 1 and array.size and expected[0] in (-1, None):
        array = array.reshape((1, *array.shape))  # a single instance without the batch dimension
    if expected and array.ndim != len(expected):
        raise RequestError(
            f"input '{spec.name}' must have {len(expected)} dimensions {_shape_text(expected)}, got shape {list(array.shape)}",
            error_code="INVALID_PARAMETER_VALUE",
        )
    for axis, (want, got) in enumerate(zip(expected, array.shape)):
        if want not in (-1, None) and want != got:
            raise RequestError(
                f"input '{spec.name}' must have shape {_shape_text(expected)}, got {list(array.shape)} (axis {axis})",
                error_code="INVALID_PARAMETER_VALUE",
            )
    if array.size == 0:
        raise RequestError(f"input '{spec.name}' is empty", error_code="INVALID_PARAMETER_VALUE")
    return array


def _shape_text(shape: tuple) -> str:
    return "[" + ", ".join("N" if d in (-1, None) else str(d) for d in shape) + "]"
