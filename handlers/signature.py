"""The model's input contract, read from the manifest, and the checks every request value passes.

Standard library only: ``tensor_feeds`` turns checked values into numpy arrays for ONNX Runtime,
``row_feeds`` into plain rows for the micro runtime.

Three layouts, chosen at build time:
- ``matrix``: all columns numeric, fed as one [rows, columns] tensor (fastest);
- ``columns``: one [rows, 1] tensor per column (mixed numeric/string tables, ColumnTransformer);
- ``tensors``: raw named tensors (ONNX models without a column signature).
"""

from __future__ import annotations

import math

from .errors import RequestError

NUMBERS = frozenset((int, float))
INTEGERS = frozenset((int,))
FLOATING = ("double", "float")
MISSING_STRING = ""  # fed for null in a string column whose model treats it as an unknown category


class ColumnSpec:
    """A named column: ``type`` is the MLflow type requests are validated against, ``dtype`` the
    tensor type it is fed to the model as (sklearn graphs compute in float32)."""

    __slots__ = ("name", "type", "dtype", "allow_missing")

    def __init__(self, name: str, type: str, dtype: str = "float32", allow_missing: bool = False) -> None:
        self.name, self.type, self.dtype, self.allow_missing = name, type, dtype, allow_missing

    def __repr__(self) -> str:
        return f"ColumnSpec({self.name!r}, {self.type!r}, {self.dtype!r}, {self.allow_missing!r})"


class TensorSpec:
    __slots__ = ("name", "dtype", "shape")

    def __init__(self, name: str, dtype: str, shape: tuple) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape  # shape: -1 (or None) for a variable dimension


class InputSignature:
    """Plain classes, not dataclasses, here and in the rest of the request path: importing
    ``dataclasses`` costs ~20 ms of a cold start (it imports inspect and ast)."""

    __slots__ = ("layout", "columns", "tensors", "column_names", "column_index")

    def __init__(self, layout: str, columns: tuple, tensors: tuple) -> None:
        self.layout = layout  # "matrix" | "columns" | "tensors"
        self.columns = columns
        self.tensors = tensors
        self.column_names = tuple(c.name for c in columns)
        self.column_index = {name: index for index, name in enumerate(self.column_names)}

    @classmethod
    def from_manifest(cls, signature: dict) -> InputSignature:
        columns = tuple(ColumnSpec(c["name"], c["type"], c["dtype"], bool(c.get("allow_missing"))) for c in signature.get("columns", ()))
        tensors = tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in signature["inputs"])
        return cls(signature["layout"], columns, tensors)

    def describe(self) -> dict:
        """The input contract as clients see it (for /version and error messages)."""
        if self.layout == "tensors":
            return {"inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in self.tensors]}
        return {"columns": [{"name": c.name, "type": c.type} for c in self.columns]}


def numeric_values(column: ColumnSpec, values: list) -> list:
    """A float column's values with null as NaN (where the column accepts missing values), or a
    400 naming the column: a null it refuses, or a value that is not a number."""
    types = set(map(type, values))
    if type(None) in types:
        if not column.allow_missing:
            raise missing_value(column, values)
        values = [math.nan if v is None else v for v in values]
        types.discard(type(None))
    if not types <= NUMBERS:
        raise bad_value(column, values, EXPECTED[column.type])
    return values


def bad_value(column: ColumnSpec, values: list, expected: str) -> RequestError:
    for row, value in enumerate(values):
        if not value_fits(column, value):
            shown = "null" if value is None else repr(value)[:60]
            return RequestError(
                f"column '{column.name}' expects {expected}, got {shown} in row {row}",
                error_code="INVALID_PARAMETER_VALUE",
            )
    return RequestError(
        f"column '{column.name}' expects {expected}",
        error_code="INVALID_PARAMETER_VALUE",
    )


def value_fits(column: ColumnSpec, value) -> bool:
    kind = column.type
    if value is None:
        return (kind in FLOATING or kind == "string") and column.allow_missing
    value_type = type(value)
    if kind in FLOATING:
        if value_type not in NUMBERS:
            return False
        return not (value_type is float and math.isnan(value)) or column.allow_missing
    if kind in ("long", "integer"):
        return value_type is int or (value_type is float and value.is_integer())
    if kind == "boolean":
        return value_type is bool
    return value_type is str


EXPECTED = {
    "double": "a number",
    "float": "a number",
    "long": "an integer",
    "integer": "an integer",
    "boolean": "true or false",
    "string": "a string",
}


def out_of_range(column: ColumnSpec, values: list, representable) -> RequestError:
    """A number the column's dtype cannot hold (1e39 in float32, 1e400, a 400-digit integer);
    ``representable(value, dtype)`` is the runtime's own test."""
    limit = {
        "float32": "float32 (about ±3.4e38)",
        "float64": "float64 (about ±1.8e308)",
    }.get(column.dtype, column.dtype)
    for row, value in enumerate(values):
        if type(value) in NUMBERS and not representable(value, column.dtype):
            shown = repr(value) if len(repr(value)) <= 40 else f"a {len(str(abs(value)))}-digit number"
            return RequestError(
                f"column '{column.name}' has {shown} in row {row}, outside the range of {limit}",
                error_code="INVALID_PARAMETER_VALUE",
            )
    return RequestError(
        f"column '{column.name}' has a value outside the range of {limit}",
        error_code="INVALID_PARAMETER_VALUE",
    )


def missing_value(column: ColumnSpec, values: list) -> RequestError:
    for row, value in enumerate(values):
        if value is None or (type(value) is float and math.isnan(value)):
            return RequestError(
                f"column '{column.name}' has a missing value (null/NaN) in row {row}, and the model does not accept missing values there",
                error_code="INVALID_PARAMETER_VALUE",
            )
    return RequestError(
        f"column '{column.name}' has a missing value",
        error_code="INVALID_PARAMETER_VALUE",
    )


def shape_text(shape: tuple) -> str:
    return "[" + ", ".join("N" if d in (-1, None) else str(d) for d in shape) + "]"
