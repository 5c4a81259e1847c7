"""XGBoost and LightGBM estimators inside scikit-learn Pipelines: their onnxmltools converters
registered with skl2onnx, and what the graph and the threshold rows need to know of them.

XGBoost casts its input to float32 (like scikit-learn's trees: the Pipeline gets a Cast before it);
LightGBM compares float64 (its part of the graph gets the booster's float64 thresholds and float64
features, no Cast).
"""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.convert.boosted_trees import converter_opsets
from mpack.packager.convert.lightgbm_model import exact_thresholds
from mpack.packager.convert.xgboost_model import positional_features

XGBOOST_CLASSES = ("XGBClassifier", "XGBRegressor")
LIGHTGBM_CLASSES = ("LGBMClassifier", "LGBMRegressor")
_registered = False


def boosting_kind(estimator) -> str | None:
    """``xgboost`` or ``lightgbm`` for their scikit-learn wrappers, else None."""
    module, name = type(estimator).__module__, type(estimator).__name__
    if module.startswith("xgboost") and name in XGBOOST_CLASSES:
        return "xgboost"
    if module.startswith("lightgbm") and name in LIGHTGBM_CLASSES:
        return "lightgbm"
    return None


def contains_boosting(estimator) -> bool:
    """An XGBoost/LightGBM wrapper anywhere in the model: itself, a Pipeline's step, a
    ColumnTransformer's or an ensemble's member (scikit-learn lists them all in deep params)."""
    if boosting_kind(estimator):
        return True
    get_params = getattr(estimator, "get_params", None)
    parts = get_params(deep=True).values() if callable(get_params) else ()
    return any(boosting_kind(part) for part in parts)


def boosting_opset(estimator, opset: dict | None) -> dict | None:
    """The opsets skl2onnx converts ``estimator`` to: the plan's, every domain pinned (the xgboost
    and lightgbm flavors' policy, up to skl2onnx's newest) where onnxmltools' converters, registered
    below, write part of the graph."""
    if not contains_boosting(estimator):
        return opset
    import skl2onnx

    return converter_opsets(opset, skl2onnx.__max_supported_opset__)


def register_boosting_converters() -> None:
    """Teach skl2onnx the XGBoost/LightGBM wrappers that are installed (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes, calculate_linear_regressor_output_shapes

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        by_position = _by_position(convert_xgboost)
        update_registered_converter(xgboost.XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes, by_position, options=classifier_options)
        update_registered_converter(xgboost.XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, by_position)
    except ImportError:
        pass
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(lightgbm.LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes, convert_lightgbm, options=classifier_options)
        update_registered_converter(lightgbm.LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm)
    except ImportError:
        pass
    _registered = True


def _by_position(convert_xgboost):
    """onnxmltools' XGBoost converter, given a copy whose features are named f0, f1, ... (it refuses
    a DataFrame's column names; the Pipeline's graph feeds the features by position anyway)."""

    def convert(scope, operator, container):
        operator.raw_operator = positional_features(operator.raw_operator)
        return convert_xgboost(scope, operator, container)

    return convert


def boosting_splits(estimator) -> list[tuple[int, float]]:
    """(feature index, threshold) of every split of a fitted XGBoost/LightGBM wrapper."""
    kind = boosting_kind(estimator)
    if kind == "xgboost":
        booster = estimator.get_booster()
        table = booster.trees_to_dataframe()
        names = booster.feature_names or [f"f{i}" for i in range(estimator.n_features_in_)]
        inner = table[table["Feature"] != "Leaf"]
        index = {name: position for position, name in enumerate(names)}
        return sorted({(index[f], float(t)) for f, t in zip(inner["Feature"], inner["Split"]) if f in index})
    if kind == "lightgbm":
        table = estimator.booster_.trees_to_dataframe()
        names = estimator.booster_.feature_name()
        inner = table[table["split_feature"].notna()]
        index = {name: position for position, name in enumerate(names)}
        return sorted({(index[f], float(t)) for f, t in zip(inner["split_feature"], inner["threshold"]) if f in index})
    return []


def lightgbm_part(final, input_name: str, opset, options):
    """The LightGBM step converted on its own, fed float64 with the booster's own thresholds."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    part = to_onnx(final, initial_types=[(input_name, FloatTensorType([None, int(final.n_features_in_)]))], options=options, target_opset=opset)
    if not exact_thresholds(part, final.booster_.dump_model()):
        raise MpackError("the LightGBM step's thresholds could not be matched to its graph", "log the LightGBM model on its own (mlflow.lightgbm), or ship the Pipeline natively (--runtime native)")
    return part
