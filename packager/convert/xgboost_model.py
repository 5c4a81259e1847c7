"""XGBoost models (XGBClassifier, XGBRegressor, Booster) to ONNX with onnxmltools.

XGBoost turns every input into float32 before it walks its trees (``x < threshold``, both float32),
so the graph is fed float32: the bundle rounds the request's numbers exactly as XGBoost's DMatrix
does. NaN is XGBoost's missing value and takes each split's default branch, which onnxmltools writes
into the graph. The answers are the ones MLflow's pyfunc gives: labels for classifiers (``predict``,
with ``predict_proba`` beside it), the raw ``Booster.predict`` otherwise.
"""

from __future__ import annotations

import copy
import importlib
import json

from mpack.infra.errors import MpackError
from mpack.packager.convert.boosted_trees import frame_of, model_columns, pin_opsets, positive_class_only, refuse_conversion, target_opset, tree_model, wrapper_outputs
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.source.mlmodel import MLmodel

REGRESSION_OBJECTIVES = ("reg:squarederror", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror", "reg:linear", "reg:logistic", "count:poisson", "reg:gamma", "reg:tweedie")


def load_xgboost_model(model: MLmodel):
    """The model as MLflow saved it (xgb/json/ubj: plain data, never a pickle)."""
    flavor = model.flavor("xgboost")
    class_path = flavor.get("model_class") or "xgboost.core.Booster"
    if not class_path.startswith("xgboost."):
        raise MpackError(f"MLmodel names {class_path!r} as the XGBoost model class", "only xgboost's own classes are loaded; re-log the model with mlflow.xgboost")
    file = model.path / flavor.get("data", "model.xgb")
    if not file.is_file():
        raise MpackError(f"model file {file.name} named in MLmodel is missing from {model.path}", "the model directory is incomplete; re-log the model")
    module, _, name = class_path.rpartition(".")
    try:
        instance = getattr(importlib.import_module(module), name)()
        instance.load_model(str(file))
    except Exception as exc:  # xgboost raises XGBoostError, AttributeError for a renamed class...
        raise MpackError(
            f"cannot load {file.name} as {class_path}: {str(exc).splitlines()[0][:200]}", "the file is corrupt or was saved by an incompatible XGBoost; build with --env-manager uv"
        ) from None
    return instance


def convert_xgboost(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    import onnxmltools
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    loaded = load_xgboost_model(model)
    booster = loaded if isinstance(loaded, xgboost.Booster) else loaded.get_booster()
    columns = model_columns(model, booster.feature_names, "XGBoost")
    if booster.feature_types and any(t == "c" for t in booster.feature_types):
        raise refuse_conversion("XGBoost", "categorical features", ValueError("onnxmltools has no converter for XGBoost's categorical splits"), f"onnxmltools {onnxmltools.__version__}")
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    try:
        graph = onnxmltools.convert_xgboost(positional_features(loaded), initial_types=[("input", FloatTensorType([None, len(columns)]))], target_opset=target_opset(options.opset))
        pin_opsets(graph, options.opset)
    except Exception as exc:  # onnxmltools raises RuntimeError, NotImplementedError, KeyError...
        raise refuse_conversion("XGBoost", f"{type(loaded).__name__}, objective {objective}", exc, f"onnxmltools {onnxmltools.__version__}") from None
    by_name = booster.feature_names is not None
    converter = {"onnxmltools": onnxmltools.__version__, "xgboost": xgboost.__version__, "estimator": f"{type(loaded).__name__}({objective})"}
    outputs = [o.name for o in graph.graph.output]
    if isinstance(loaded, xgboost.Booster):
        task, methods = _booster_outputs(graph, objective, outputs)

        def reference(rows):
            return {"predict": loaded.predict(xgboost.DMatrix(frame_of(columns, rows, by_name)))}

    else:
        task, methods, reference = wrapper_outputs(graph, loaded, columns, by_name)
    return tree_model(graph, columns, "float32", task, methods, "xgboost", converter, reference)


def positional_features(loaded):
    """A copy whose booster names its features f0, f1, ... by position: onnxmltools reads a split's
    feature index from its name and refuses any other (a DataFrame's ``days_since_login``). The
    graph's input columns are the signature's, in the booster's order, so requests keep the names."""
    import xgboost

    booster = loaded if isinstance(loaded, xgboost.Booster) else loaded.get_booster()
    if not booster.feature_names:
        return loaded
    if isinstance(loaded, xgboost.Booster):
        unnamed = loaded.copy()
        unnamed.feature_names = None
        return unnamed
    unnamed = copy.deepcopy(loaded)
    unnamed.get_booster().feature_names = None
    return unnamed


def _booster_outputs(graph, objective: str, outputs: list[str]) -> tuple[str, dict]:
    """A Booster answers what ``Booster.predict`` returns: the value, P(positive) or the class probabilities."""
    if objective in REGRESSION_OBJECTIVES and len(outputs) == 1:
        return "regressor", {"predict": {"outputs": [outputs[0]], "squeeze": True}}
    if objective == "binary:logistic" and len(outputs) == 2:
        positive_class_only(graph, outputs[1])
        return "generic", {"predict": {"outputs": ["probability"], "squeeze": True}}
    if objective == "multi:softprob" and len(outputs) == 2:
        del graph.graph.output[0]
        return "generic", {"predict": {"outputs": [outputs[1]]}}
    raise MpackError(
        f"an XGBoost Booster with objective {objective} is not converted to ONNX",
        "log an XGBClassifier/XGBRegressor instead, or ship the model as itself with --runtime native (image targets)",
    )
