"""Checked request values as numpy arrays for ONNX Runtime: one [rows, columns] matrix, one
[rows, 1] tensor per column, or named tensors (the three layouts of ``signature``)."""

from __future__ import annotations


import numpy as np

from .errors import RequestError
from .signature import (
    EXPECTED,
    FLOATING,
    INTEGERS,
    MISSING_STRING,
    NUMBERS,
    ColumnSpec,
    InputSignature,
    TensorSpec,
    bad_value,
    missing_value,
    numeric_values,
    out_of_range,
    shape_text,
    value_fits,
)

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


def column_array(column: ColumnSpec, values: list) -> np.ndarray:
    """One column's JSON values as a 1-D array of the column's dtype, or a 400 naming the column."""
    kind = column.type
    types = set(map(type, values))
    if kind in FLOATING:
        values = numeric_values(column, values)
        try:
            array = np.asarray(values, dtype=TENSOR_DTYPES[column.dtype])
        except OverflowError:  # an integer beyond float64 (a 400-digit number)
            raise out_of_range(column, values, _representable) from None
        finite = np.isfinite(array)
        if not finite.all():
            if np.isinf(array).any():
                raise out_of_range(column, values, _representable)
            if not column.allow_missing:
                raise missing_value(column, values)
        return array
    if kind in ("long", "integer"):
        if not types <= INTEGERS and any(not value_fits(column, v) for v in values):
            raise bad_value(column, values, EXPECTED[kind])
        try:
            return np.asarray(values, dtype=TENSOR_DTYPES[column.dtype])
        except (OverflowError, ValueError, TypeError):
            raise out_of_range(column, values, _representable) from None
    expected_type = bool if kind == "boolean" else str
    if types != {expected_type}:
        if kind == "string" and column.allow_missing and types <= {str, type(None)}:
            # The model treats a missing category as an unknown one (checked at build time).
            values = [MISSING_STRING if v is None else v for v in values]
        else:
            raise bad_value(column, values, EXPECTED[kind])
    return np.asarray(values, dtype=TENSOR_DTYPES[column.dtype])


def _representable(value, dtype: str) -> bool:
    try:
        return bool(np.isfinite(np.asarray(value, dtype=TENSOR_DTYPES[dtype])))
    except (OverflowError, ValueError, TypeError):
        return False


def matrix_feed(signature: InputSignature, rows: list[list]) -> np.ndarray:
    """Rows (already in signature column order) as one 2-D tensor; one pass when all values are plain."""
    tensor = signature.tensors[0]
    dtype = TENSOR_DTYPES[tensor.dtype]
    types = {type(v) for row in rows for v in row}
    if types <= NUMBERS:
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
    return {column.name: column_array(column, list(columns[index])).reshape(-1, 1) for index, column in enumerate(signature.columns)}


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
        raise RequestError(
            f"input '{spec.name}' must contain only strings",
            error_code="INVALID_PARAMETER_VALUE",
        )
    expected = spec.shape
    if expected and array.ndim == len(expected) - 1 and array.size and expected[0] in (-1, None):
        array = array.reshape((1, *array.shape))  # a single instance without the batch dimension
    if expected and array.ndim != len(expected):
        raise RequestError(
            f"input '{spec.name}' must have {len(expected)} dimensions {shape_text(expected)}, got shape {list(array.shape)}",
            error_code="INVALID_PARAMETER_VALUE",
        )
    for axis, (want, got) in enumerate(zip(expected, array.shape)):
        if want not in (-1, None) and want != got:
            raise RequestError(
                f"input '{spec.name}' must have shape {shape_text(expected)}, got {list(array.shape)} (axis {axis})",
                error_code="INVALID_PARAMETER_VALUE",
            )
    if array.size == 0:
        raise RequestError(f"input '{spec.name}' is empty", error_code="INVALID_PARAMETER_VALUE")
    return array


class ArrayFeeds:
    """The feeds of an ONNX Runtime session, and how many rows they hold."""

    @staticmethod
    def matrix(signature: InputSignature, rows: list[list]) -> dict:
        return {signature.tensors[0].name: matrix_feed(signature, rows)}

    columns = staticmethod(column_feeds)

    @staticmethod
    def tensors(signature: InputSignature, data: dict) -> dict:
        feeds = {spec.name: tensor_array(spec, data[spec.name]) for spec in signature.tensors}
        if len({len(a) for a in feeds.values()}) > 1:
            raise RequestError(
                "all inputs must have the same number of rows",
                error_code="INVALID_PARAMETER_VALUE",
            )
        return feeds

    @staticmethod
    def rows(feeds: dict) -> int:
        first = next(iter(feeds.values()))
        return len(first) if first.ndim else 1

    @staticmethod
    def plain(output, squeeze: bool):
        """An output array as JSON-ready lists; [N, 1] squeezed to [N] when the method says so."""
        return (output.reshape(-1) if squeeze and output.ndim == 2 and output.shape[1] == 1 else output).tolist()
