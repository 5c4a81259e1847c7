"""Emitters for the standard ONNX operators that tabular graphs use: element-wise arithmetic and
comparisons, casts, reductions, shape moves along the row, MatMul/Gemm, Gather, ArgMax, Softmax.

Each emitter takes the program, the node's input values and attributes and returns its output
values. Row-wise only: an operator that would mix rows (reshape across the batch axis, a
reduction over it) is refused by name.
"""

from __future__ import annotations

import math

import numpy as np

from mpack.packager.micro.program import FLOATS, INTEGERS, ONNX_DTYPES, Program, Unsupported, Value, literal, numpy_array

ARITHMETIC = {"Add": ("{a} + {b}", np.add), "Sub": ("{a} - {b}", np.subtract), "Mul": ("{a} * {b}", np.multiply), "Div": ("{a} / {b}", np.divide)}
COMPARISONS = {
    "Less": ("{a} < {b}", np.less),
    "Greater": ("{a} > {b}", np.greater),
    "Equal": ("{a} == {b}", np.equal),
    "LessOrEqual": ("{a} <= {b}", np.less_equal),
    "GreaterOrEqual": ("{a} >= {b}", np.greater_equal),
    "And": ("({a} and {b})", np.logical_and),
    "Or": ("({a} or {b})", np.logical_or),
}
UNARY = {
    "Abs": "abs(v)",
    "Neg": "-v",
    "Sqrt": "sqrt(v)",
    "Exp": "exp(v)",
    "Log": "log(v)",
    "Sigmoid": "sigmoid(v)",
    "Relu": "(v if v > 0 else 0.0 * v)",
    "Tanh": "tanh(v)",
    "Reciprocal": "div(1.0, v)",
    "Floor": "(v if v != v or v in (INF, -INF) else float(floor(v)))",
    "Ceil": "(v if v != v or v in (INF, -INF) else float(ceil(v)))",
}
UNARY_FOLD = {"Abs": np.abs, "Neg": np.negative, "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Reciprocal": np.reciprocal, "Floor": np.floor, "Ceil": np.ceil}


def _const_flat(value: Value) -> np.ndarray:
    return np.asarray(value.const).reshape(-1)


def _broadcastable(const: Value, row: Value) -> bool:
    """A constant that broadcasts over a row value element by element (or is one element)."""
    size = const.const.size
    if size == 1:
        return True
    shape = list(const.shape)
    while shape and shape[0] == 1 and len(shape) > len(row.shape):
        shape.pop(0)
    return tuple(shape) == tuple(row.shape)


def elementwise(program: Program, a: Value, b: Value, template: str, fold, dtype: str, name: str) -> Value:
    """``template`` over two values with ONNX broadcasting, as far as it stays within a row."""
    if not a.is_row and not b.is_row:
        return program.constant(fold(numpy_array(a), numpy_array(b)), dtype)
    if a.is_row and b.is_row:
        if a.shape == b.shape:
            expr = template.format(a="p", b="q")
            return program.row(f"[{expr} for p, q in zip({a.expr}, {b.expr})]", dtype, a.shape)
        for one, other, first in ((b, a, False), (a, b, True)):
            if one.size == 1 and len(one.shape) <= len(other.shape):
                scalar = f"{one.expr}[0]"
                expr = template.format(a=scalar, b="p") if first else template.format(a="p", b=scalar)
                return program.row(f"[{expr} for p in {other.expr}]", dtype, other.shape)
        raise Unsupported(f"{name} of row shapes {list(a.shape)} and {list(b.shape)}")
    row, const = (a, b) if a.is_row else (b, a)
    if not _broadcastable(const, row):
        raise Unsupported(f"{name} broadcasting a constant of shape {list(const.shape)} over rows of shape {list(row.shape)}")
    flat = _const_flat(const)
    if flat.size == 1:
        scalar = literal(flat[0])
        expr = template.format(a="p", b=scalar) if a.is_row else template.format(a=scalar, b="p")
        return program.row(f"[{expr} for p in {row.expr}]", dtype, row.shape)
    table = program.constant(flat, const.dtype)
    expr = template.format(a="p", b="q") if a.is_row else template.format(a="q", b="p")
    return program.row(f"[{expr} for p, q in zip({row.expr}, {table.expr})]", dtype, row.shape)


def arithmetic(op: str):
    def emit(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
        a, b = inputs
        template, fold = ARITHMETIC[op]
        if a.dtype not in FLOATS and op == "Div":
            raise Unsupported("integer Div")
        if op == "Div" and (b.is_row or not np.all(_const_flat(b) != 0)):
            template = "div({a}, {b})"  # IEEE: x/0 is inf or nan, never an exception
        return [elementwise(program, a, b, template, fold, a.dtype, op)]

    return emit


def comparison(op: str):
    def emit(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
        template, fold = COMPARISONS[op]
        return [elementwise(program, inputs[0], inputs[1], template, fold, "bool", op)]

    return emit


def unary(op: str):
    def emit(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
        (x,) = inputs
        if not x.is_row:
            if op not in UNARY_FOLD:
                raise Unsupported(f"{op} of a constant")
            return [program.constant(UNARY_FOLD[op](numpy_array(x)), x.dtype)]
        if x.dtype not in FLOATS and op not in ("Abs", "Neg"):
            raise Unsupported(f"{op} of {x.dtype}")
        return [program.row(f"[{UNARY[op]} for v in {x.expr}]", x.dtype, x.shape)]

    return emit


def emit_identity(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    return [inputs[0]]


def emit_isnan(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    (x,) = inputs
    return [program.row(f"[v != v for v in {x.expr}]", "bool", x.shape)]


def emit_not(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    (x,) = inputs
    return [program.row(f"[not v for v in {x.expr}]", "bool", x.shape)]


def emit_where(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    condition, a, b = inputs
    if not condition.is_row:
        raise Unsupported("Where on a constant condition")
    dtype = a.dtype
    picked = []
    for value in (a, b):
        if value.is_row:
            if value.shape != condition.shape and value.size != 1:
                raise Unsupported(f"Where with row shapes {list(condition.shape)} and {list(value.shape)}")
            picked.append(value.expr if value.shape == condition.shape else f"repeat({value.expr}[0])")
        else:
            if not _broadcastable(value, condition):
                raise Unsupported(f"Where broadcasting a constant of shape {list(value.shape)}")
            flat = _const_flat(value)
            picked.append(f"repeat({literal(flat[0])})" if flat.size == 1 else program.constant(flat, value.dtype).expr)
    return [program.row(f"[p if c else q for c, p, q in zip({condition.expr}, {picked[0]}, {picked[1]})]", dtype, condition.shape)]


CAST_EXPR = {
    "float32": "v",  # rounded by the float32 row
    "float64": "float(v)",
    "bool": "bool(v)",
}


def emit_cast(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    (x,) = inputs
    to = ONNX_DTYPES.get(attrs["to"])
    if to is None:
        raise Unsupported(f"Cast to ONNX type {attrs['to']}")
    if not x.is_row:
        return [program.constant(numpy_array(x).astype({"string": object}.get(to, to)), to)]
    if to == x.dtype:
        return [x]
    if x.dtype == "string" or to == "string" and x.dtype in FLOATS:
        raise Unsupported(f"Cast from {x.dtype} to {to}")
    if to in INTEGERS:
        expr = "trunc(v)" if x.dtype in FLOATS else "int(v)"
    elif to == "string":
        expr = "str(int(v))"
    else:
        expr = CAST_EXPR[to]
    return [program.row(f"[{expr} for v in {x.expr}]", to, x.shape)]


def _axis(attrs: dict, value: Value, default: int = -1) -> int:
    axis = attrs.get("axis", default)
    rank = len(value.shape) + 1
    return axis + rank if axis < 0 else axis


def emit_argmax(op: str):
    def emit(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
        (x,) = inputs
        if not x.is_row or len(x.shape) != 1 or _axis(attrs, x, 0) != 1:
            raise Unsupported(f"{op} other than along the columns of a [rows, n] tensor")
        last = bool(attrs.get("select_last_index", 0))
        kernel = "argmax" if op == "ArgMax" else "argmin"
        keep = attrs.get("keepdims", 1)
        return [program.row(f"[{kernel}({x.expr}, {last})]", "int64", (1,) if keep else ())]

    return emit


def emit_softmax(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    (x,) = inputs
    if not x.is_row or len(x.shape) != 1 or _axis(attrs, x) != 1:
        raise Unsupported("Softmax other than along the columns of a [rows, n] tensor")
    return [program.row(f"softmax({x.expr}, {x.dtype == 'float32'})", x.dtype, x.shape)]


REDUCTIONS = {
    "ReduceSum": "sum({x})",
    "ReduceSumSquare": "sum([v * v for v in {x}])",
    "ReduceMax": "max({x})",
    "ReduceMin": "min({x})",
    "ReduceMean": "sum({x}) / len({x})",
    "ReduceL2": "sqrt(sum([v * v for v in {x}]))",
    "ReduceL1": "sum([abs(v) for v in {x}])",
}


def reduction(op: str):
    def emit(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
        x = inputs[0]
        axes = attrs.get("axes")
        if axes is None and len(inputs) > 1 and inputs[1] is not None:
            axes = _const_flat(inputs[1]).tolist()
        if not x.is_row or len(x.shape) != 1 or axes is None or [a % 2 for a in axes] != [1]:
            raise Unsupported(f"{op} other than along the columns of a [rows, n] tensor")
        keep = attrs.get("keepdims", 1)
        return [program.row(f"[{REDUCTIONS[op].format(x=x.expr)}]", x.dtype, (1,) if keep else ())]

    return emit


def _row_shape_after(x: Value, target: list[int], op: str) -> tuple:
    """The row shape a Reshape to ``target`` gives, when the batch axis stays first and alone."""
    if not target or target[0] not in (-1, 0) or -1 in target[1:] and target[0] == -1:
        raise Unsupported(f"{op} to {target}, which moves the batch axis")
    rest = [x.shape[i] if d == 0 and i < len(x.shape) else d for i, d in enumerate(target[1:])]
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        rest = [x.size // known if d == -1 else d for d in rest]
    if math.prod(rest) != x.size:
        raise Unsupported(f"{op} of rows of shape {list(x.shape)} to {target}")
    return tuple(rest)


def emit_reshape(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x, shape = inputs
    target = _const_flat(shape).astype(int).tolist()
    if not x.is_row:
        return [program.constant(numpy_array(x).reshape(target), x.dtype)]
    return [Value(x.expr, x.dtype, _row_shape_after(x, target, "Reshape"))]


def emit_flatten(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    (x,) = inputs
    if not x.is_row or attrs.get("axis", 1) != 1:
        raise Unsupported("Flatten other than at axis 1")
    return [Value(x.expr, x.dtype, (x.size,))]


def _axes(inputs: list[Value], attrs: dict) -> list[int] | None:
    if "axes" in attrs:
        return list(attrs["axes"])
    if len(inputs) > 1 and inputs[1] is not None:
        return _const_flat(inputs[1]).astype(int).tolist()
    return None


def emit_squeeze(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = inputs[0]
    axes = _axes(inputs, attrs)
    rank = len(x.shape) + 1
    drop = {a % rank for a in axes} if axes is not None else {i + 1 for i, d in enumerate(x.shape) if d == 1}
    if not x.is_row or 0 in drop or any(x.shape[a - 1] != 1 for a in drop):
        raise Unsupported("Squeeze of the batch axis")
    return [Value(x.expr, x.dtype, tuple(d for i, d in enumerate(x.shape) if i + 1 not in drop))]


def emit_unsqueeze(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = inputs[0]
    axes = _axes(inputs, attrs) or []
    rank = len(x.shape) + 1 + len(axes)
    shape = list(x.shape)
    for axis in sorted(a % rank for a in axes):
        if axis == 0:
            raise Unsupported("Unsqueeze before the batch axis")
        shape.insert(axis - 1, 1)
    if not x.is_row:
        raise Unsupported("Unsqueeze of a constant")
    return [Value(x.expr, x.dtype, tuple(shape))]


def emit_concat(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    """Concatenation along a row axis with only 1s before it: the rows' flat data joined in order."""
    parts = [v for v in inputs if v is not None]
    if not all(v.is_row for v in parts) or len({len(v.shape) for v in parts}) != 1 or not parts[0].shape:
        raise Unsupported("Concat other than of row values of one rank")
    rank = len(parts[0].shape) + 1
    axis = attrs.get("axis", 1) % rank
    if axis == 0:
        raise Unsupported("Concat along the batch axis")
    row_axis = axis - 1
    before = {v.shape[:row_axis] for v in parts}
    after = {v.shape[row_axis + 1 :] for v in parts}
    if len(after) != 1 or len(before) != 1 or math.prod(next(iter(before))) != 1:
        raise Unsupported(f"Concat along axis {attrs.get('axis')} of rows shaped {[list(v.shape) for v in parts]}")
    dtypes = {v.dtype for v in parts}
    if len(dtypes) != 1:
        raise Unsupported(f"Concat of mixed types {sorted(dtypes)}")
    shape = (*next(iter(before)), sum(v.shape[row_axis] for v in parts), *next(iter(after)))
    return [program.row("[" + ", ".join(f"*{v.expr}" for v in parts) + "]", parts[0].dtype, shape)]


def emit_gather(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    data, indices = inputs
    axis = attrs.get("axis", 0)
    if not data.is_row and data.const.ndim == 1 and indices.is_row and axis == 0:
        table = program.constant(data.const, data.dtype)
        return [program.row(f"[{table.expr}[i] for i in {indices.expr}]", data.dtype, indices.shape)]
    if data.is_row and not indices.is_row and len(data.shape) == 1 and axis in (1, -1):
        picked = _const_flat(indices).astype(int).tolist()
        shape = () if indices.const.ndim == 0 else (len(picked),)
        return [program.row("[" + ", ".join(f"{data.expr}[{i}]" for i in picked) + "]", data.dtype, shape)]
    raise Unsupported("Gather other than of class labels by row indices or of columns by constant indices")


def emit_matmul(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x, w = inputs
    if not x.is_row or w.is_row or len(x.shape) != 1 or w.const.ndim not in (1, 2) or w.const.shape[0] != x.size:
        raise Unsupported("MatMul other than of [rows, n] by a constant [n, m] matrix")
    return [_dot(program, x, np.asarray(w.const).reshape(x.size, -1).T, w.const.ndim == 1)]


def _dot(program: Program, x: Value, columns: np.ndarray, vector: bool) -> Value:
    table = program.constant(columns, x.dtype)
    width = columns.shape[1]
    rows = ", ".join(f"{table.expr}[{i * width}:{(i + 1) * width}]" for i in range(columns.shape[0]))
    name = program.fresh("W")
    program.constants.append(f"{name} = ({rows},)")
    dot = "dot32({x}, c)" if x.dtype == "float32" else "sum(map(mul, {x}, c))"
    return program.row(f"[{dot.format(x=x.expr)} for c in {name}]", x.dtype, () if vector else (columns.shape[0],))


def emit_gemm(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    if not a.is_row or b.is_row or attrs.get("transA", 0) or len(a.shape) != 1:
        raise Unsupported("Gemm other than of [rows, n] by a constant matrix")
    matrix = np.asarray(b.const)
    matrix = matrix if attrs.get("transB", 0) else matrix.T  # [m, n]
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    product = _dot(program, a, matrix * alpha, False)
    if c is None or beta == 0:
        return [product]
    bias = program.constant(np.asarray(c.const) * beta, c.dtype) if not c.is_row else c
    return [elementwise(program, product, bias, "{a} + {b}", np.add, a.dtype, "Gemm")]


def emit_constant(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    from onnx import numpy_helper

    if "value" not in attrs:
        raise Unsupported("Constant other than a tensor value")
    array = numpy_helper.to_array(attrs["value"])
    return [program.constant(array, ONNX_DTYPES.get(attrs["value"].data_type, "float32"))]


OPERATORS = {
    "Identity": emit_identity,
    "Cast": emit_cast,
    "IsNaN": emit_isnan,
    "Not": emit_not,
    "Where": emit_where,
    "ArgMax": emit_argmax("ArgMax"),
    "ArgMin": emit_argmax("ArgMin"),
    "Softmax": emit_softmax,
    "Reshape": emit_reshape,
    "Flatten": emit_flatten,
    "Squeeze": emit_squeeze,
    "Unsqueeze": emit_unsqueeze,
    "Concat": emit_concat,
    "Gather": emit_gather,
    "MatMul": emit_matmul,
    "Gemm": emit_gemm,
    "Constant": emit_constant,
    **{op: arithmetic(op) for op in ARITHMETIC},
    **{op: comparison(op) for op in COMPARISONS},
    **{op: unary(op) for op in UNARY},
    **{op: reduction(op) for op in REDUCTIONS},
}
