"""What the micro compiler writes: one Python module, ``model_micro.py``, whose ``row`` function is
the ONNX graph evaluated on one row, in the graph's own order of operations.

Values are tracked at compile time: a *row* value is a flat sequence per request row (its shape
without the batch axis is known), a *constant* is known now (an initializer, or folded from
initializers) and is written into the module once. Every operator emitter works on these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mpack.infra.errors import MpackError

ONNX_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32", 9: "bool", 8: "string", 5: "int16", 3: "int8", 2: "uint8"}
FLOATS = ("float32", "float64")
INTEGERS = ("int64", "int32", "int16", "int8", "uint8")
NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "bool": np.bool_, "string": object}


@dataclass
class Value:
    expr: str  # the name holding it in the generated code
    dtype: str
    shape: tuple  # rows: the shape without the batch axis; constants: the full shape
    const: np.ndarray | None = None  # constants only

    @property
    def is_row(self) -> bool:
        return self.const is None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Unsupported(MpackError):
    """An operator, attribute or shape the micro runtime does not evaluate (named in the message)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"the micro runtime cannot evaluate this model: {message}", "build with --runtime onnx (the default for models it cannot evaluate)")


def literal(value) -> str:
    """A Python literal for a constant element, exact for every float (repr round-trips)."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8")
    if isinstance(value, (str, np.str_)):
        return repr(str(value))
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    if math.isnan(number):
        return "NAN"
    if math.isinf(number):
        return "INF" if number > 0 else "-INF"
    return repr(number)


class Program:
    """The generated module being written: constants, helper functions and the row body."""

    def __init__(self) -> None:
        self.constants: list[str] = []
        self.functions: list[str] = []
        self.body: list[str] = []
        self.values: dict[str, Value] = {}
        self._counter = 0

    def fresh(self, prefix: str = "v") -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def get(self, name: str) -> Value:
        try:
            return self.values[name]
        except KeyError:
            raise Unsupported(f"value {name!r} is used before it is computed") from None

    def constant(self, array: np.ndarray, dtype: str) -> Value:
        name = self.fresh("K")
        flat = np.asarray(array).reshape(-1)
        items = ", ".join(literal(v) for v in flat.tolist())
        self.constants.append(f"{name} = ({items}{',' if flat.size == 1 else ''})")
        return Value(name, dtype, tuple(np.asarray(array).shape), np.asarray(array))

    def row(self, expr: str, dtype: str, shape: tuple) -> Value:
        """A new row value computed by ``expr``; float32 results are rounded through array('f')."""
        name = self.fresh()
        if dtype == "float32":
            expr = f"array('f', {expr})"
        self.body.append(f"{name} = {expr}")
        return Value(name, dtype, tuple(shape))

    def emit(self, line: str) -> None:
        self.body.append(line)

    def source(self, inputs: list[str], outputs: list[Value], header: str) -> str:
        shapes = tuple(o.shape if o.dtype != "map" else "map" for o in outputs)
        lines = [
            f'"""{header}"""',
            "",
            "from array import array",
            "",
            "from mpack.handlers.micro_kernels import *  # noqa: F403",
            "",
            f"OUTPUT_SHAPES = {shapes!r}",
            *self.constants,
            "",
            *self.functions,
            "",
            f"def row({', '.join(inputs)}):",
            *(f"    {line}" for line in self.body),
            f"    return ({', '.join(o.expr for o in outputs)},)",
            "",
        ]
        return "\n".join(lines)


def numpy_array(value: Value) -> np.ndarray:
    return np.asarray(value.const, dtype=NUMPY_DTYPES.get(value.dtype))
