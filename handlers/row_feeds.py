"""Checked request values as plain rows for the micro runtime: the same checks and the same error
messages as ``tensor_feeds`` (numpy), with the standard library alone.

float32 columns are rounded to float32 here, once, through ``array('f')`` — what numpy's
``asarray(dtype=float32)`` does — so the compiled graph sees the values ONNX Runtime would.
"""

from __future__ import annotations

import math
from array import array

from .errors import RequestError
from .signature import EXPECTED, FLOATING, INTEGERS, MISSING_STRING, ColumnSpec, InputSignature, bad_value, missing_value, numeric_values, out_of_range, value_fits

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
        raise RequestError("the micro runtime serves models with a column signature", 500, "INTERNAL_ERROR")

    @staticmethod
    def rows(feeds: dict) -> int:
        return len(next(iter(feeds.values())))

    @staticmethod
    def plain(output: list, squeeze: bool):
        """Rows of an output, squeezed from [N, 1] to [N] when the method says so."""
        if squeeze and output and all(type(row) is list and len(row) == 1 for row in output):
            return [row[0] for row in output]
        return output
