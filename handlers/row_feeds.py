"""Checked request values as plain rows for the micro runtime: the same checks and the same error
messages as ``tensor_feeds`` (numpy), with the standard library alone.

float32 columns are rounded to float32 here, once, through ``array('f')`` — what numpy's
``asarray(dtype=float32)`` does — so the compiled graph sees the values ONNX Runtime would.
"""

from __future__ import annotations

import math
from array import array

from .errors import RequestError
from .signature import EXPECTED, FLOATING, INTEGERS, MISSING_STRING, ColumnSpec, InputSignature, TensorSpec, bad_value, missing_value, numeric_values, out_of_range, shape_text, value_fits

FLOAT32_LIMIT = 3.4028235677973366e38  # the smallest magnitude that rounds to float32 infinity
INT_RANGES = {"int64": 2**63, "int32": 2**31, "int16": 2**15, "int8": 2**7}


def representable(value, dtype: str) -> bool:
    """Can ``dtype`` hold ``value`` (a JSON number)? The stdlib twin of numpy's overflow test."""
    if dtype in INT_RANGES:
        return type(value) is int and -INT_RANGES[dtype] <= value < INT_RANGES[dtype] or type(value) is float and value.is_integer() and -INT_RANGES[dtype] <= value < INT_RANGES[dtype]
    try:
        number = float(value)
    except OverflowError:
        return False
    if dtype == "float32":
        return abs(number) < FLOAT32_LIMIT or math.isnan(number)
    return not math.isinf(number)


def column_values(column: ColumnSpec, values: list) -> list:
    """One column's JSON values as Python values of the column's dtype, or a 400 naming the column."""
    kind = column.type
    types = set(map(type, values))
    if kind in FLOATING:
        values = numeric_values(column, values)
        if not all(representable(v, column.dtype) for v in values):
            raise out_of_range(column, values, representable)
        numbers = array("f", values) if column.dtype == "float32" else array("d", values)
        if not column.allow_missing and any(v != v for v in numbers):
            raise missing_value(column, values)
        return numbers.tolist()
    if kind in ("long", "integer"):
        if not types <= INTEGERS and any(not value_fits(column, v) for v in values):
            raise bad_value(column, values, EXPECTED[kind])
        if not all(representable(v, column.dtype) for v in values):
            raise out_of_range(column, values, representable)
        return [int(v) for v in values]
    expected_type = bool if kind == "boolean" else str
    if types != {expected_type}:
        if kind == "string" and column.allow_missing and types <= {str, type(None)}:
            return [MISSING_STRING if v is None else v for v in values]
        raise bad_value(column, values, EXPECTED[kind])
    return list(values)


def _checked_columns(signature: InputSignature, rows: list[list]) -> list[list]:
    if not rows:
        return [[] for _ in signature.columns]
    return [column_values(column, list(values)) for column, values in zip(signature.columns, zip(*rows))]


def one_matrix(signature: InputSignature) -> TensorSpec | None:
    """The signature's one [rows, features] float tensor (a model logged with a tensor signature)."""
    if len(signature.tensors) != 1:
        return None
    spec = signature.tensors[0]
    return spec if spec.dtype in ("float32", "float64") and len(spec.shape) == 2 and type(spec.shape[1]) is int and spec.shape[1] > 0 else None


def matrix_rows(spec: TensorSpec, data) -> list:
    """A [rows, features] tensor's JSON rows (or one row alone) rounded to its dtype as numpy does,
    or a 400 naming the input: a row of another width, a value that is not a number or out of range."""
    if type(data) is list and data and all(type(v) is float or type(v) is int for v in data):
        data = [data]  # a single instance without the batch dimension
    if type(data) is not list or not data:
        raise RequestError(f"input '{spec.name}' is empty" if data == [] else f"input '{spec.name}' must be a list of rows of shape {shape_text(spec.shape)}", error_code="INVALID_PARAMETER_VALUE")
    width, code = spec.shape[1], "f" if spec.dtype == "float32" else "d"
    rows = []
    for index, row in enumerate(data):
        if type(row) is not list or len(row) != width or not all(type(v) is float or type(v) is int for v in row):
            shown = f"{len(row)} values" if type(row) is list and len(row) != width else "a value that is not a number"
            raise RequestError(f"input '{spec.name}' must have shape {shape_text(spec.shape)} of numbers; row {index} has {shown}", error_code="INVALID_PARAMETER_VALUE")
        try:
            values = array(code, row)
        except OverflowError:
            values = None
        if values is None or any(abs(v) == math.inf for v in values):
            raise RequestError(f"input '{spec.name}' has a value outside the range of {spec.dtype} in row {index}", error_code="INVALID_PARAMETER_VALUE")
        rows.append(values)
    return rows


class RowFeeds:
    """The feeds of a micro session: per input, one plain sequence per row."""

    @staticmethod
    def matrix(signature: InputSignature, rows: list[list]) -> dict:
        dtype = signature.tensors[0].dtype
        fast = all(type(v) is float or type(v) is int for row in rows for v in row)
        if fast:
            try:
                matrix = [array("f", row) if dtype == "float32" else array("d", row) for row in rows]
            except OverflowError:
                matrix = None
            if matrix is not None and all(abs(v) < math.inf for row in matrix for v in row):
                return {signature.tensors[0].name: matrix}
        columns = _checked_columns(signature, rows)  # names the offending column, or accepts allowed NaN
        return {signature.tensors[0].name: [list(row) for row in zip(*columns)]}

    @staticmethod
    def columns(signature: InputSignature, rows: list[list]) -> dict:
        checked = _checked_columns(signature, rows)
        return {column.name: [(value,) for value in values] for column, values in zip(signature.columns, checked)}

    @staticmethod
    def tensors(signature: InputSignature, data: dict) -> dict:
        spec = one_matrix(signature)
        if spec is None:
            raise RequestError("the micro runtime serves models with a column signature or one [rows, features] tensor", 500, "INTERNAL_ERROR")
        return {spec.name: matrix_rows(spec, data[spec.name])}

    @staticmethod
    def rows(feeds: dict) -> int:
        return len(next(iter(feeds.values())))

    @staticmethod
    def plain(output: list, squeeze: bool):
        """Rows of an output, squeezed from [N, 1] to [N] when the method says so."""
        if squeeze and output and all(type(row) is list and len(row) == 1 for row in output):
            return [row[0] for row in output]
        return output
