"""The ONNX graph of a scikit-learn model, computing in the dtypes scikit-learn computes in.

scikit-learn's tree models (DecisionTree, RandomForest, ExtraTrees, GradientBoosting, IsolationForest)
cast their input to float32 and compare it with float64 thresholds, whatever the dtype of the steps
before them. skl2onnx fed float64 mishandles that (thresholds adjusted for double inputs, then stored
as float32: 47 of 3,000 random rows of a RandomForest moved by up to 0.06). So such a Pipeline is
converted in two parts: the preprocessing in the signature's dtype, then a Cast to float32, then the
tree estimator converted for float32 inputs (whose thresholds skl2onnx rounds down exactly). Every
other model is converted whole, in the signature's dtype.
"""

from __future__ import annotations

import warnings

import numpy as np
from mpack.packager.convert.class_labels import first_maximum_labels
from mpack.packager.convert.onnx import set_opsets
from mpack.packager.convert.sklearn_boosting import boosting_kind, boosting_opset, lightgbm_part, register_boosting_converters
from mpack.packager.convert.sklearn_exact import register_exact_converters

TREE_FEATURES = "tree_features"


def casts_to_float32(estimator) -> bool:
    """Tree models whose predict validates X as float32 (scikit-learn's DTYPE; XGBoost's DMatrix)."""
    if hasattr(estimator, "tree_") or boosting_kind(estimator) == "xgboost":
        return True
    members = getattr(estimator, "estimators_", None)
    if members is None:
        return False
    first = np.asarray(members, dtype=object).ravel()[:1]
    return bool(len(first)) and hasattr(first[0], "tree_")


def final_step(estimator):
    """The estimator that answers: a Pipeline's last step, or the estimator itself."""
    from sklearn.pipeline import Pipeline

    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def sklearn_to_onnx(estimator, initial_types: list, opset: dict | None, classifier: bool):
    """One ONNX ModelProto for ``estimator`` fed ``initial_types``."""
    from skl2onnx.common.data_types import DoubleTensorType

    register_exact_converters()
    register_boosting_converters()
    options = {"zipmap": False} if classifier else None  # probabilities as one tensor: faster to serve
    final = final_step(estimator)
    fed_double = any(isinstance(t, DoubleTensorType) for _, t in initial_types)
    model = _convert(estimator, final, initial_types, boosting_opset(estimator, opset), options, fed_double)
    route_missing_values(model, final)
    if not classifier:
        keep_output_rows(model, regressor_width(final))
    if classifier and hasattr(final, "predict_proba") and (casts_to_float32(final) or boosting_kind(final) or type(final).__module__.startswith("sklearn.linear_model")):
        first_maximum_labels(model, final.classes_)
    return sorted_opsets(model)


def _convert(estimator, final, initial_types, opset, options, fed_double: bool):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.pipeline import Pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        float64_trees = boosting_kind(final) == "lightgbm"  # LightGBM compares doubles: no Cast
        if not (casts_to_float32(final) or float64_trees) or (not fed_double and not float64_trees):
            return to_onnx(estimator, initial_types=initial_types, options=options, target_opset=opset)
        width = int(final.n_features_in_)
        if float64_trees:
            tree = lightgbm_part(final, TREE_FEATURES, opset, options)
        else:
            tree = to_onnx(final, initial_types=[(TREE_FEATURES, FloatTensorType([None, width]))], options=options, target_opset=opset)
        if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
            head = to_onnx(estimator[:-1], initial_types=initial_types, target_opset=opset)
        else:
            head = None
    return _join(head, tree, initial_types[0][0], fed_double, tree_double=float64_trees)


def regressor_width(final) -> int:
    """Values a regressor predicts per row (an MLPRegressor fitted on 10 targets: 10)."""
    width = getattr(final, "n_outputs_", None)
    if width is None:
        coef = getattr(final, "coef_", None)
        width = coef.shape[0] if getattr(coef, "ndim", 1) == 2 else 1
    return int(width)


def keep_output_rows(model, width: int) -> None:
    """skl2onnx flattens some multi-output regressors' answers to [rows * width, 1] (MLPRegressor,
    decision trees): one row's values would come back as ``width`` rows. Reshaped to [rows, width]
    (a no-op where the converter kept them); the parity gate checks the shapes."""
    if width <= 1:
        return
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    output = graph.output[0]
    flat = f"{output.name}_rows_times_width"
    for node in graph.node:
        node.output[:] = [flat if name == output.name else name for name in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array([-1, width], dtype=np.int64), f"{output.name}_shape"))
    graph.node.append(helper.make_node("Reshape", [flat, f"{output.name}_shape"], [output.name], name=f"{output.name}_rows"))
    element = output.type.tensor_type.elem_type or TensorProto.FLOAT
    graph.output[0].CopyFrom(helper.make_tensor_value_info(output.name, element, [None, width]))


def route_missing_values(model, final) -> None:
    """NaN down the branch scikit-learn sends it (``tree_.missing_go_to_left``, learned in fit, or
    the larger child for a tree that saw no NaN), instead of skl2onnx's always-false branch: a
    RandomForest fed a missing value otherwise answers differently from scikit-learn."""
    from onnx import helper

    trees = [final] if hasattr(final, "tree_") else list(np.asarray(getattr(final, "estimators_", []), dtype=object).ravel())
    if not trees or any(not hasattr(getattr(tree, "tree_", None), "missing_go_to_left") for tree in trees):
        return
    if np.ndim(getattr(final, "estimators_", [])) > 1:
        return  # GradientBoosting: [stages, classes] of trees, and it refuses NaN itself
    for node in model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        tree_ids, node_ids = values.get("nodes_treeids"), values.get("nodes_nodeids")
        if not tree_ids or max(tree_ids) >= len(trees):
            continue
        tracks = [int(trees[t].tree_.missing_go_to_left[n]) if trees[t].tree_.children_left[n] >= 0 else 0 for t, n in zip(tree_ids, node_ids)]
        kept = [a for a in node.attribute if a.name != "nodes_missing_value_tracks_true"]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute("nodes_missing_value_tracks_true", tracks)])


def sorted_opsets(model):
    """opset_import in domain order, one entry a domain: skl2onnx lists them in set order, which
    follows PYTHONHASHSEED (the same model would serialize to different bytes in each process), and
    merged graphs may list a domain twice."""
    set_opsets(model, _newest_opsets(model))
    return model


def _newest_opsets(*models) -> dict[str, int]:
    """Each domain the models import, at the highest version any of them asks for."""
    versions: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    return versions


def _join(head, tree, input_name: str, fed_double: bool = True, tree_double: bool = False):
    """head -> Cast(float32) -> tree; a bare tree model gets the Cast on its own input (LightGBM's
    trees take float64: the Cast is to double)."""
    import onnx
    from onnx import TensorProto, compose, helper

    tree = compose.add_prefix(tree, "tree_", rename_inputs=False, rename_outputs=False)
    if head is not None:  # its output may bear the tree's output name ("variable"): rename inside
        head = compose.add_prefix(head, "head_", rename_inputs=False, rename_outputs=True)
    else:
        head = helper.make_model(
            helper.make_graph(
                [helper.make_node("Identity", [input_name], ["head_features"])],
                "head",
                [helper.make_tensor_value_info(input_name, TensorProto.DOUBLE if fed_double else TensorProto.FLOAT, [None, None])],
                [helper.make_tensor_value_info("head_features", TensorProto.DOUBLE if fed_double else TensorProto.FLOAT, [None, None])],
            ),
            opset_imports=list(tree.opset_import),
            ir_version=tree.ir_version,
        )
    (head_output,) = [o.name for o in head.graph.output]
    tree_type = TensorProto.DOUBLE if tree_double else TensorProto.FLOAT
    head.graph.node.append(helper.make_node("Cast", [head_output], ["head_features_float32"], to=tree_type, name="mpack_cast_to_tree_dtype"))
    del head.graph.output[:]
    head.graph.output.append(helper.make_tensor_value_info("head_features_float32", tree_type, [None, None]))
    _align_opsets(head, tree)
    joined = compose.merge_models(head, tree, io_map=[("head_features_float32", TREE_FEATURES)])
    onnx.checker.check_model(joined)
    return joined


def _align_opsets(first, second) -> None:
    """Both parts import the union of their opsets at the higher version of each domain."""
    versions = _newest_opsets(first, second)
    for model in (first, second):
        set_opsets(model, versions)
    ir = max(first.ir_version, second.ir_version)
    first.ir_version = second.ir_version = ir
