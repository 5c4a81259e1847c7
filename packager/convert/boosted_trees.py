"""What XGBoost and LightGBM models share once their graph is built: numeric columns fed as one
[rows, columns] matrix in the dtype the framework computes in, missing values allowed (both route
NaN down a learned branch), the original model's answers as the parity reference, and rows at the
graph's own split thresholds."""

from __future__ import annotations

from typing import Callable

from mpack.infra.errors import MpackError
from mpack.packager.check.graph_thresholds import graph_threshold_records
from mpack.packager.convert.class_labels import first_maximum_labels
from mpack.packager.convert.converted import ConvertedModel
from mpack.packager.convert.lightgbm_categories import accepts_null, category_records
from mpack.packager.convert.onnx import set_opsets, tensor_info
from mpack.packager.convert.tensor_signature import feature_columns, matrix_tensor
from mpack.packager.source.examples import typed_frame
from mpack.packager.source.mlmodel import Column, MLmodel

NUMERIC = ("double", "float", "long", "integer")
CONVERTER_OPSET_CAP = 15  # the newest ai.onnx opset onnxmltools' tree converters write
ML_OPSET = 3  # TreeEnsemble with *_as_tensor attributes; read by every onnxruntime mpack ships
IR_VERSION = 8  # read by onnxruntime 1.16 (Lambda's Python 3.11 runtime plan) and newer


def target_opset(opset: dict | None) -> int:
    return converter_opsets(opset, CONVERTER_OPSET_CAP)[""]


def model_columns(model: MLmodel, feature_names, flavor: str, encoded: tuple[str, ...] = ()) -> tuple[Column, ...]:
    """The signature's columns (in the model's feature order where they name the same features), a
    tensor signature's features, else the feature names the model was fitted with (as doubles). ``encoded``: column types the
    converter turns into numbers itself (LightGBM's category strings)."""
    tensor = matrix_tensor(model)  # the registry then gives the graph that tensor (tensor_signature)
    if tensor:
        columns = feature_columns(tensor, feature_names)
    elif model.columns:
        columns = in_feature_order(model.columns, feature_names)
    elif feature_names:
        columns = tuple(Column(str(name), "double") for name in feature_names)
    else:
        raise MpackError(f"the {flavor} model has neither a signature nor feature names, so its input columns are unknown", "log it with a signature (infer_signature or input_example)")
    refused = [f"{c.name} ({c.type})" for c in columns if c.type not in NUMERIC + encoded]
    if refused:
        raise MpackError(
            f"{flavor} columns that are not numbers cannot be converted to ONNX: {', '.join(refused)}",
            "encode categorical columns as numbers before the model, or ship the model as itself (--runtime native, image targets)",
        )
    return tuple(columns)


def in_feature_order(columns: tuple[Column, ...], feature_names) -> tuple[Column, ...]:
    """The graph reads features by position: a signature listing the model's features in another
    order is read in the model's (requests name their columns, so nothing changes for them)."""
    by_name = {c.name: c for c in columns}
    names = [str(n) for n in feature_names or ()]
    if sorted(names) != sorted(by_name) or len(by_name) != len(columns):
        return tuple(columns)
    return tuple(by_name[name] for name in names)


def frame_of(columns: tuple[Column, ...], records, by_name: bool):
    """What the framework's predict is fed: a DataFrame typed like MLflow's (named features), or its array."""
    frame = typed_frame(columns, records)
    return frame if by_name else frame.to_numpy()


def converter_opsets(opset: dict | None, newest: int) -> dict:
    """Every domain pinned, for onnxmltools' tree converters: they write their nodes at whatever
    version they are told, and told nothing that is the installed onnx's newest (ai.onnx.ml 5 with
    onnx 1.23), newer than the converters (and skl2onnx, where they are registered) accept. The main domain is the
    plan's, at most ``newest`` (the newest the converting library writes); ai.onnx.ml is ML_OPSET."""
    return {**(opset or {}), "": min((opset or {}).get("", newest), newest), "ai.onnx.ml": ML_OPSET}


def pin_opsets(graph, opset: dict | None):
    """The opsets the bundle's onnxruntime reads, written out: onnxmltools may leave the main domain
    out (an optimizer then stamps its own newest), and double thresholds need ai.onnx.ml 3."""
    set_opsets(graph, {"": target_opset(opset), "ai.onnx.ml": ML_OPSET})
    graph.ir_version = max(graph.ir_version, IR_VERSION)
    return graph


def tree_model(
    graph,
    columns: tuple[Column, ...],
    dtype: str,
    task: str,
    methods: dict,
    flavor: str,
    converter: dict,
    reference: Callable[[list[dict]], dict],
    categories: dict[str, list[str]] | None = None,
) -> ConvertedModel:
    """``categories``: string column -> its categories, for a graph that encodes them itself (one
    [rows, 1] input per column); otherwise the graph reads one [rows, columns] matrix."""
    categories = categories or {}
    entries = [{"name": c.name, "type": c.type, "dtype": dtype, "allow_missing": c.type in ("double", "float")} for c in columns]
    for entry in entries:
        if entry["name"] in categories:
            entry.update(dtype="string", allow_missing=accepts_null(categories[entry["name"]]))
    if categories:
        inputs = [{"name": e["name"], "dtype": e["dtype"], "shape": [-1, 1]} for e in entries]
    else:
        inputs = [{"name": graph.graph.input[0].name, "dtype": dtype, "shape": [-1, len(columns)]}]
    signature = {"layout": "columns" if categories else "matrix", "columns": entries, "inputs": inputs, "outputs": [tensor_info(o) for o in graph.graph.output]}

    def boundary_records(base):
        return graph_threshold_records(graph, columns, base) + category_records(columns, categories, base)

    return ConvertedModel(
        onnx_bytes=graph.SerializeToString(),
        signature=signature,
        prediction={"default": "predict", "methods": methods},
        flavor=flavor,
        task=task,
        converter=converter,
        reference=reference,
        columns=columns,
        boundary_records=boundary_records,
    )


def wrapper_outputs(graph, loaded, columns: tuple[Column, ...], by_name: bool, features: Callable | None = None):
    """(task, methods, reference) of a scikit-learn-style wrapper: labels and probabilities for a
    classifier (labels as ``classes_[argmax]``), the value for a regressor. ``features(rows)``: what
    the model is fed, where it is not ``frame_of``'s."""
    outputs = [o.name for o in graph.graph.output]
    if features is None:

        def features(rows):
            return frame_of(columns, rows, by_name)
    if hasattr(loaded, "predict_proba"):
        first_maximum_labels(graph, loaded.classes_)

        def classify(rows):
            fed = features(rows)
            return {"predict": loaded.predict(fed), "predict_proba": loaded.predict_proba(fed)}

        return "classifier", {"predict": {"outputs": [outputs[0]]}, "predict_proba": {"outputs": [outputs[1]]}}, classify

    def regress(rows):
        return {"predict": loaded.predict(features(rows))}

    return "regressor", {"predict": {"outputs": [outputs[0]], "squeeze": True}}, regress


def refuse_conversion(flavor: str, what: str, error: Exception, converter: str) -> MpackError:
    """A model the converter cannot express: the operator that failed, the converter's version, the ways forward."""
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    return MpackError(
        f"{converter} cannot convert this {flavor} model ({what}): {first}",
        "ship the model as itself with --runtime native (image targets), or export it to ONNX yourself and log it with mlflow.onnx",
    )


def positive_class_only(graph, probabilities: str) -> None:
    """A binary Booster: the graph's [rows, 2] probabilities -> P(class 1) per row, as Booster.predict."""
    from onnx import TensorProto, helper

    graph.graph.initializer.append(helper.make_tensor("mpack_positive_class", TensorProto.INT64, [], [1]))
    graph.graph.node.append(helper.make_node("Gather", [probabilities, "mpack_positive_class"], ["probability"], axis=1, name="mpack_positive_probability"))
    del graph.graph.output[:]
    graph.graph.output.append(helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None]))
