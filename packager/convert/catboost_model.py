"""CatBoost models (CatBoostClassifier, CatBoostRegressor) to ONNX with CatBoost's own exporter.

CatBoost computes on float32 features with float32 borders, so the graph is fed float32. Its
exporter ends classifiers in a ZipMap (a list of dicts per row): replaced by the probability tensor,
which is faster to serve, and labels are ``classes_[argmax]`` as CatBoost's predict gives them — as a
[rows, 1] column for multiclass models, the shape ``predict`` (and so MLflow's pyfunc) returns.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.convert.boosted_trees import frame_of, model_columns, pin_opsets, refuse_conversion, tree_model
from mpack.packager.convert.class_labels import first_maximum_labels
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.source.mlmodel import MLmodel

MODEL_TYPES = ("CatBoostClassifier", "CatBoostRegressor", "CatBoost")


def load_catboost_model(model: MLmodel):
    """The model from CatBoost's own file format (cbm/json: plain data, never a pickle)."""
    flavor = model.flavor("catboost")
    model_type = flavor.get("model_type", "CatBoost")
    if model_type not in MODEL_TYPES:
        raise MpackError(f"MLmodel names {model_type!r} as the CatBoost model type", f"mpack loads {', '.join(MODEL_TYPES)}")
    file = model.path / flavor.get("data", "model.cb")
    if not file.is_file():
        raise MpackError(f"model file {file.name} named in MLmodel is missing from {model.path}", "the model directory is incomplete; re-log the model")
    try:
        instance = getattr(importlib.import_module("catboost"), model_type)()
        instance.load_model(str(file), format=flavor.get("save_format", "cbm"))
    except Exception as exc:  # CatBoostError on a damaged file
        raise MpackError(
            f"cannot load {file.name} as {model_type}: {str(exc).splitlines()[0][:200]}", "the file is corrupt or was saved by an incompatible CatBoost; build with --env-manager uv"
        ) from None
    return instance


def convert_catboost(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    import catboost
    import onnx

    loaded = load_catboost_model(model)
    columns = model_columns(model, loaded.feature_names_, "CatBoost")
    version = f"catboost {catboost.__version__}"
    if loaded.get_cat_feature_indices():
        raise refuse_conversion("CatBoost", "categorical features", ValueError("CatBoost's ONNX export does not take categorical features"), version)
    with tempfile.TemporaryDirectory(prefix="mpack-catboost-") as folder:
        target = Path(folder) / "model.onnx"
        try:
            loaded.save_model(str(target), format="onnx")
        except Exception as exc:  # CatBoostError naming what the export lacks
            raise refuse_conversion("CatBoost", type(loaded).__name__, exc, version) from None
        graph = onnx.load(str(target))
    pin_opsets(graph, options.opset)
    converter = {"catboost": catboost.__version__, "exporter": "catboost", "estimator": type(loaded).__name__}
    classifier = hasattr(loaded, "predict_proba") and _drop_zipmap(graph)
    outputs = [o.name for o in graph.graph.output]
    if classifier:
        first_maximum_labels(graph, loaded.classes_)
        multiclass = len(loaded.classes_) > 2
        if multiclass:
            _label_column(graph, outputs[0])
        methods = {"predict": {"outputs": [outputs[0]]}, "predict_proba": {"outputs": [outputs[1]]}}

        def reference(rows):
            features = frame_of(columns, rows, True)
            return {"predict": loaded.predict(features), "predict_proba": loaded.predict_proba(features)}

        return tree_model(graph, columns, "float32", "classifier", methods, "catboost", converter, reference)

    def predict(rows):
        return {"predict": loaded.predict(frame_of(columns, rows, True))}

    return tree_model(graph, columns, "float32", "regressor", {"predict": {"outputs": [outputs[0]], "squeeze": True}}, "catboost", converter, predict)


def _drop_zipmap(graph) -> bool:
    """The ZipMap's input (the probability tensor) becomes the graph output it fed."""
    from onnx import TensorProto, helper

    zipmaps = [n for n in graph.graph.node if n.op_type == "ZipMap"]
    if not zipmaps:
        return False
    (zipmap,) = zipmaps
    probabilities = zipmap.output[0]
    graph.graph.node.remove(zipmap)
    for node in graph.graph.node:
        node.output[:] = [probabilities if name == zipmap.input[0] else name for name in node.output]
    for index, output in enumerate(graph.graph.output):
        if output.name == probabilities:
            graph.graph.output.remove(output)
            graph.graph.output.insert(index, helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, [None, None]))
    return True


def _label_column(graph, label: str) -> None:
    """Labels as a [rows, 1] column (CatBoost's multiclass predict shape)."""
    from onnx import TensorProto, helper

    producer = next(n for n in graph.graph.node if label in n.output)
    producer.output[list(producer.output).index(label)] = "mpack_label_vector"
    graph.graph.initializer.append(helper.make_tensor("mpack_label_axis", TensorProto.INT64, [1], [1]))
    graph.graph.node.append(helper.make_node("Unsqueeze", ["mpack_label_vector", "mpack_label_axis"], [label], name="mpack_label_column"))
    output = next(o for o in graph.graph.output if o.name == label)
    elem_type = output.type.tensor_type.elem_type
    graph.graph.output.remove(output)
    graph.graph.output.insert(0, helper.make_tensor_value_info(label, elem_type, [None, 1]))
