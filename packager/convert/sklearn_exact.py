"""skl2onnx converters replaced where theirs do not compute what scikit-learn computes.

scikit-learn keeps the dtype it is fed: double columns are imputed and scaled in float64 (trees cast
to float32 themselves), float columns in float32 with float64 statistics, in its own operation order.
skl2onnx's SimpleImputer stores its fill values as float32 (and ONNX Runtime's Imputer has no double
kernel), and its StandardScaler, RobustScaler and MaxAbsScaler multiply float32 inputs by a float32
reciprocal. These converters emit plain arithmetic that reproduces scikit-learn's results bit for
bit on both dtypes; everything else stays skl2onnx's. Registering them is idempotent and only affects this process's conversions.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

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
    from sklearn.preprocessing import MaxAbsScaler, RobustScaler, StandardScaler

    def imputer(scope, operator, container):
        if not _numeric_nan_imputer(operator):
            return convert_sklearn_imputer(scope, operator, container)
        _convert_imputer(scope, operator, container)

    def scaler(scope, operator, container):
        if len(operator.inputs) != 1 or _elem_type(operator) not in (_FLOAT, _DOUBLE) or getattr(operator.raw_operator, "clip", False):
            return convert_sklearn_scaler(scope, operator, container)
        _convert_scaler(scope, operator, container)

    update_registered_converter(SimpleImputer, "SklearnImputer", calculate_sklearn_imputer_output_shapes, imputer)
    scaler_options = {"div": ["std", "div", "div_cast"]}
    update_registered_converter(StandardScaler, "SklearnScaler", calculate_sklearn_scaler_output_shapes, scaler, options=scaler_options)
    update_registered_converter(RobustScaler, "SklearnRobustScaler", calculate_sklearn_scaler_output_shapes, scaler, options=scaler_options)
    update_registered_converter(MaxAbsScaler, "SklearnMaxAbsScaler", calculate_sklearn_scaler_output_shapes, scaler, options=scaler_options)
    _REGISTERED = True


_FLOAT, _DOUBLE = TensorProto.FLOAT, TensorProto.DOUBLE


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
    container.add_initializer(variable, TensorProto.INT64, [values.size], values.astype(np.int64).tolist())
    return variable


def scaler_steps(op) -> list[tuple[str, np.ndarray]]:
    """The in-place steps a fitted scaler's transform takes on dense X, with their float64
    statistics: StandardScaler ``X -= mean_; X /= scale_``, RobustScaler ``X -= center_;
    X /= scale_``, MaxAbsScaler ``X /= scale_``."""
    from sklearn.preprocessing import MaxAbsScaler, RobustScaler

    if isinstance(op, RobustScaler):
        offset, scale = (op.center_ if op.with_centering else None), (op.scale_ if op.with_scaling else None)
    elif isinstance(op, MaxAbsScaler):
        offset, scale = None, op.scale_
    else:
        offset, scale = (op.mean_ if op.with_mean else None), (op.scale_ if op.with_std else None)
    steps = []
    if offset is not None:
        steps.append(("Sub", np.asarray(offset, dtype=np.float64)))
    if scale is not None:
        steps.append(("Div", np.asarray(scale, dtype=np.float64)))
    return steps


def _float32_statistics(op, steps) -> bool:
    """Whether this scikit-learn scales float32 input with float32 statistics (StandardScaler since
    1.6 casts them to X's dtype) or with float64 ones (RobustScaler, MaxAbsScaler, older releases),
    found by asking the fitted scaler itself."""
    rng = np.random.default_rng(0)
    width = int(op.n_features_in_)
    probe = rng.normal(0, 3, (512, width))
    for op_type, statistics in reversed(steps):  # values on the scaler's own scale
        probe = probe * statistics if op_type == "Div" else probe + statistics
    probe = probe.astype(np.float32)
    expected = op.transform(probe.copy())
    narrow = probe.copy()
    for op_type, statistics in steps:
        if op_type == "Sub":
            narrow -= statistics.astype(np.float32)
        else:
            narrow /= statistics.astype(np.float32)
    return bool(np.array_equal(narrow, expected))


def _convert_scaler(scope, operator, container) -> None:
    """The scaler's steps as scikit-learn's in-place arithmetic computes them: float64 input in
    float64; float32 input either in float32 with float32 statistics or in float64 rounded back to
    float32 after each step, whichever this scikit-learn does."""
    op = operator.raw_operator
    elem = _elem_type(operator)
    steps = scaler_steps(op)
    narrow = elem == _FLOAT and bool(steps) and _float32_statistics(op, steps)
    in_own_dtype = elem == _DOUBLE or narrow  # each step straight in X's dtype, no widening
    value = _single_input(scope, operator, container)
    if not steps:
        _node(scope, container, "Identity", [value], operator.outputs[0].full_name)
        return
    for index, (op_type, statistics) in enumerate(steps):
        last = index == len(steps) - 1
        constant = _constant(scope, container, op_type.lower(), statistics.astype(np.float32 if narrow else np.float64).reshape(1, -1))
        if in_own_dtype:
            value = _node(scope, container, op_type, [value, constant], operator.outputs[0].full_name if last else None)
            continue
        widened = _node(scope, container, "Cast", [value], to=_DOUBLE)
        result = _node(scope, container, op_type, [widened, constant])
        value = _node(scope, container, "Cast", [result], operator.outputs[0].full_name if last else None, to=_FLOAT)
