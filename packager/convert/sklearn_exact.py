"""skl2onnx converters replaced where theirs do not compute what scikit-learn computes.

scikit-learn keeps the dtype it is fed: double columns are imputed and scaled in float64 (trees cast
to float32 themselves), float columns in float32 with float64 statistics, in its own operation order.
skl2onnx's SimpleImputer stores its fill values as float32 (and ONNX Runtime's Imputer has no double
kernel), and its StandardScaler multiplies float32 inputs by a float32 reciprocal. These converters
emit plain arithmetic that reproduces scikit-learn's results bit for bit on both dtypes; everything
else stays skl2onnx's. Registering them is idempotent and only affects this process's conversions.
"""

from __future__ import annotations

import numpy as np

_REGISTERED = False


def register_exact_converters() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.operator_converters.scaler_op import convert_sklearn_scaler
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from skl2onnx.shape_calculators.scaler import calculate_sklearn_scaler_output_shapes
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    def imputer(scope, operator, container):
        if not _numeric_nan_imputer(operator):
            return convert_sklearn_imputer(scope, operator, container)
        _convert_imputer(scope, operator, container)

    def scaler(scope, operator, container):
        if len(operator.inputs) != 1 or _elem_type(operator) not in (_FLOAT, _DOUBLE):
            return convert_sklearn_scaler(scope, operator, container)
        _convert_standard_scaler(scope, operator, container)

    update_registered_converter(SimpleImputer, "SklearnImputer", calculate_sklearn_imputer_output_shapes, imputer)
    update_registered_converter(StandardScaler, "SklearnScaler", calculate_sklearn_scaler_output_shapes, scaler, options={"div": ["std", "div", "div_cast"]})
    _REGISTERED = True


_FLOAT, _DOUBLE = 1, 11  # onnx TensorProto.FLOAT / DOUBLE


def _elem_type(operator) -> int | None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kinds = {type(i.type) for i in operator.inputs}
    if kinds == {DoubleTensorType}:
        return _DOUBLE
    if kinds == {FloatTensorType}:
        return _FLOAT
    return None


def _numeric_nan_imputer(operator) -> bool:
    op = operator.raw_operator
    missing = op.missing_values
    is_nan = isinstance(missing, float) and missing != missing or (isinstance(missing, str) and missing == "NaN")
    return is_nan and _elem_type(operator) is not None and getattr(op, "add_indicator", False) is False


def _single_input(scope, operator, container) -> str:
    if len(operator.inputs) == 1:
        return operator.inputs[0].full_name
    joined = scope.get_unique_variable_name("joined")
    container.add_node("Concat", [i.full_name for i in operator.inputs], [joined], axis=1, name=scope.get_unique_operator_name("Concat"))
    return joined


def _constant(scope, container, name: str, values: np.ndarray) -> str:
    variable = scope.get_unique_variable_name(name)
    dtype = _DOUBLE if values.dtype == np.float64 else _FLOAT
    container.add_initializer(variable, dtype, list(values.shape), values.ravel().tolist())
    return variable


def _node(scope, container, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
    output = output or scope.get_unique_variable_name(op_type.lower())
    container.add_node(op_type, inputs, [output], name=scope.get_unique_operator_name(op_type), **attrs)
    return output


def _convert_imputer(scope, operator, container) -> None:
    """X[isnan(X)] = statistics_, in X's own dtype (scikit-learn casts the statistics to X's)."""
    op = operator.raw_operator
    dtype = np.float64 if _elem_type(operator) == _DOUBLE else np.float32
    features = _single_input(scope, operator, container)
    statistics = np.asarray(op.statistics_, dtype=np.float64)
    kept = ~np.isnan(statistics) if not getattr(op, "keep_empty_features", False) else np.ones(statistics.size, bool)
    fill = _constant(scope, container, "fill", statistics.astype(dtype).reshape(1, -1))
    missing = _node(scope, container, "IsNaN", [features])
    imputed = _node(scope, container, "Where", [missing, fill, features])
    if kept.all():
        _node(scope, container, "Identity", [imputed], operator.outputs[0].full_name)
        return
    indices = _constant_int(scope, container, np.flatnonzero(kept))
    _node(scope, container, "Gather", [imputed, indices], operator.outputs[0].full_name, axis=1)


def _constant_int(scope, container, values: np.ndarray) -> str:
    variable = scope.get_unique_variable_name("columns")
    container.add_initializer(variable, 7, [values.size], values.astype(np.int64).tolist())  # INT64
    return variable


def _float32_statistics(op) -> bool:
    """Whether this scikit-learn scales float32 input with float32 statistics (1.6+ casts mean_ and
    scale_ to X's dtype) or with float64 ones (older releases), found by asking the fitted scaler."""
    rng = np.random.default_rng(0)
    width = int(op.n_features_in_)
    center = np.zeros(width) if op.mean_ is None else op.mean_
    spread = np.ones(width) if op.scale_ is None else op.scale_
    probe = (center + rng.normal(0, 3, (512, width)) * spread).astype(np.float32)
    expected = op.transform(probe.copy())
    narrow = probe.copy()
    if op.mean_ is not None and op.with_mean:
        narrow -= op.mean_.astype(np.float32)
    if op.scale_ is not None and op.with_std:
        narrow /= op.scale_.astype(np.float32)
    return bool(np.array_equal(narrow, expected))


def _convert_standard_scaler(scope, operator, container) -> None:
    """(X - mean_) / scale_ as scikit-learn's in-place ``X -= mean_; X /= scale_`` computes it:
    float64 input in float64; float32 input in float32 with float32 statistics (scikit-learn 1.6+)
    or in float64 rounded back to float32 after each step (older releases)."""
    op = operator.raw_operator
    elem = _elem_type(operator)
    if elem == _FLOAT and _float32_statistics(op):
        elem = _DOUBLE  # the same graph shape: one Sub and one Div in X's own dtype
        narrow = True
    else:
        narrow = False
    value = _single_input(scope, operator, container)
    steps = []
    if getattr(op, "with_mean", True) and op.mean_ is not None:
        steps.append(("Sub", np.asarray(op.mean_, dtype=np.float64)))
    if getattr(op, "with_std", True) and op.scale_ is not None:
        steps.append(("Div", np.asarray(op.scale_, dtype=np.float64)))
    if not steps:
        _node(scope, container, "Identity", [value], operator.outputs[0].full_name)
        return
    for index, (op_type, statistics) in enumerate(steps):
        last = index == len(steps) - 1
        constant = _constant(scope, container, op_type.lower(), statistics.astype(np.float32 if narrow else np.float64).reshape(1, -1))
        if elem == _DOUBLE:
            value = _node(scope, container, op_type, [value, constant], operator.outputs[0].full_name if last else None)
            continue
        widened = _node(scope, container, "Cast", [value], to=_DOUBLE)
        result = _node(scope, container, op_type, [widened, constant])
        value = _node(scope, container, "Cast", [result], operator.outputs[0].full_name if last else None, to=_FLOAT)
