"""LightGBM models (LGBMClassifier, LGBMRegressor, Booster) to ONNX with onnxmltools.

LightGBM compares float64 inputs with float64 thresholds (``x <= t``). onnxmltools writes the
thresholds as float32 and takes float32 inputs, which sends rows lying between a threshold and its
float32 rounding down the other branch. So the graph is fed float64 and its tree operator gets the
booster's own float64 thresholds (``nodes_values_as_tensor``, read by ONNX Runtime's double trees),
matched to onnxmltools' nodes one by one — each must round to the float32 value onnxmltools wrote,
or the graph is left as converted and the parity gate, probing every split, judges it. pandas
category columns of strings are encoded in the graph as LightGBM encodes them (lightgbm_categories).
"""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.convert.boosted_trees import frame_of, model_columns, pin_opsets, positive_class_only, refuse_conversion, target_opset, tree_model, wrapper_outputs
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.lightgbm_categories import categorical_frame, categorical_missing_right, categories_read_as_integers, category_lists, encode_categories, typed_by_example
from mpack.packager.source.mlmodel import MLmodel
from mpack.packager.source.sklearn_model import load_sklearn_model

LIGHTGBM_ZERO_THRESHOLD = float.fromhex("0x1.a95a5cp-117")  # float(np.float32(1e-35))
REGRESSION_PREFIXES = ("regression", "quantile", "huber", "fair", "poisson", "gamma", "tweedie", "mape", "cross_entropy")


def load_lightgbm_model(model: MLmodel, options: ConversionOptions):
    """A Booster from its text file, or the scikit-learn wrapper as MLflow serialized it (skops/pickle)."""
    import lightgbm

    flavor = model.flavor("lightgbm")
    file = model.path / flavor.get("data", "model.lgb")
    if not file.is_file():
        raise MpackError(f"model file {file.name} named in MLmodel is missing from {model.path}", "the model directory is incomplete; re-log the model")
    if flavor.get("model_class", "lightgbm.basic.Booster") == "lightgbm.basic.Booster":
        try:
            return lightgbm.Booster(model_file=str(file))
        except Exception as exc:  # LightGBMError on a damaged file
            raise MpackError(f"cannot load {file.name} as a LightGBM Booster: {str(exc).splitlines()[0][:200]}", "the file is corrupt; re-log the model") from None
    sklearn_like = {"pickled_model": file.name, "serialization_format": flavor.get("serialization_format", "pickle"), "skops_trusted_types": flavor.get("skops_trusted_types")}
    return load_sklearn_model(model.path, sklearn_like, options.trusted_types, options.allow_pickle)


def convert_lightgbm(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    import lightgbm
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    loaded = load_lightgbm_model(model, options)
    booster = loaded if isinstance(loaded, lightgbm.Booster) else loaded.booster_
    columns = model_columns(model, booster.feature_name(), "LightGBM", encoded=("string",))
    if not model.columns:
        columns = typed_by_example(columns, model.input_example)
    categories = category_lists(booster, columns)
    dump = booster.dump_model()
    objective = str(dump.get("objective", "")).split(" ")[0]
    try:
        graph = onnxmltools.convert_lightgbm(loaded, initial_types=[("input", FloatTensorType([None, len(columns)]))], target_opset=target_opset(options.opset), zipmap=False)
        pin_opsets(graph, options.opset)
    except Exception as exc:  # onnxmltools raises RuntimeError, NotImplementedError, TypeError...
        raise refuse_conversion("LightGBM", f"{type(loaded).__name__}, objective {objective}", exc, f"onnxmltools {onnxmltools.__version__}") from None
    categorical_missing_right(graph)
    coded = frozenset(index for index, column in enumerate(columns) if column.name in categories)
    dtype = "float64" if exact_thresholds(graph, dump, coded) else "float32"
    if categories:
        encode_categories(graph, columns, categories, dtype)
    by_name = bool(categories) or not all(name.startswith("Column_") for name in booster.feature_name())
    converter = {"onnxmltools": onnxmltools.__version__, "lightgbm": lightgbm.__version__, "estimator": f"{type(loaded).__name__}({objective})", "thresholds": dtype}
    if categories:
        converter["categories"] = "pandas_categorical"

    def features(rows):
        return categorical_frame(columns, rows, categories) if categories else frame_of(columns, rows, by_name)

    outputs = [o.name for o in graph.graph.output]
    if isinstance(loaded, lightgbm.Booster):
        task, methods = _booster_outputs(graph, objective, outputs)

        def reference(rows):
            return {"predict": loaded.predict(features(rows))}

    else:
        task, methods, reference = wrapper_outputs(graph, loaded, columns, by_name, features)
    return tree_model(graph, columns, dtype, task, methods, "lightgbm", converter, reference, categories)


def exact_thresholds(graph, dump: dict, coded: frozenset = frozenset()) -> bool:
    """Give the tree operator LightGBM's float64 thresholds and the graph a float64 input; False
    (graph untouched) when a split or a threshold does not match its node. ``coded``: features fed
    category codes already (whole numbers or NaN), left as they are."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    trees = [n for n in graph.graph.node if n.op_type.startswith("TreeEnsemble")]
    if len(trees) != 1 or trees[0].input[0] != graph.graph.input[0].name:
        return False  # not the one tree operator on the graph's input this rewrite knows
    node = trees[0]
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    thresholds = _thresholds_by_node(dump)
    if thresholds is None:
        return False
    exact = []
    for tree, node_id, written, mode in zip(values["nodes_treeids"], values["nodes_nodeids"], values["nodes_values"], values["nodes_modes"]):
        if mode == b"LEAF":
            exact.append(0.0)
            continue
        expected_mode, threshold = thresholds.get((tree, node_id), (None, None))
        if expected_mode is None or expected_mode.encode() != mode or np.float32(threshold) != np.float32(written):
            return False
        exact.append(threshold)
    kept = [a for a in node.attribute if a.name != "nodes_values"]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute("nodes_values_as_tensor", numpy_helper.from_array(np.asarray(exact, dtype=np.float64)))])
    graph.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    _tiny_values_as_zero(graph, node)
    categories_read_as_integers(graph, node, coded)
    return True


def _tiny_values_as_zero(graph, tree) -> None:
    """LightGBM reads a dense row sparsely: a value with |x| <= kZeroThreshold (1e-35f, a float
    literal in its C++, so 1.0000000180025095e-35) is dropped, i.e. becomes 0.0, before any split."""
    from onnx import TensorProto, helper

    features = tree.input[0]
    graph.graph.initializer.extend(
        [
            helper.make_tensor("mpack_lightgbm_zero_threshold", TensorProto.DOUBLE, [], [LIGHTGBM_ZERO_THRESHOLD]),
            helper.make_tensor("mpack_zero", TensorProto.DOUBLE, [], [0.0]),
        ]
    )
    tree.input[0] = "mpack_lightgbm_features"
    nodes = [
        helper.make_node("Abs", [features], ["mpack_magnitude"], name="mpack_magnitude"),
        helper.make_node("LessOrEqual", ["mpack_magnitude", "mpack_lightgbm_zero_threshold"], ["mpack_is_zero"], name="mpack_is_zero"),
        helper.make_node("Where", ["mpack_is_zero", "mpack_zero", features], ["mpack_lightgbm_features"], name="mpack_tiny_as_zero"),
    ]
    for position, node in enumerate(nodes):
        graph.graph.node.insert(position, node)


def _thresholds_by_node(dump: dict) -> dict | None:
    """(tree index, node id) -> (mode, float64 value) of every split, with node ids numbered as
    onnxmltools numbers them (a node's unnumbered children get the next ids, then the left subtree,
    then the right). A categorical split ``a||b||c`` is the chain onnxmltools unfolds it into: a
    BRANCH_EQ node per category, all sharing the split's left subtree (numbered once), the last one
    falling through to its right. None when a split is neither."""
    thresholds = {}
    for tree_index, tree in enumerate(dump.get("tree_info", [])):
        root = tree["tree_structure"]
        numbered, links = {id(root): 0}, []  # links: the chain's nodes, kept alive so their id()s stay unique
        stack = [root]
        while stack:
            node = stack.pop()
            if "left_child" not in node:
                continue
            right = node["right_child"]
            if node.get("decision_type") == "<=":
                split = ("BRANCH_LEQ", float(node["threshold"]))
            elif node.get("decision_type") == "==":
                first, _, rest = str(node["threshold"]).partition("||")
                split = ("BRANCH_EQ", float(first))
                if rest:
                    right = dict(node, threshold=rest)
                    links.append(right)
            else:
                return None
            thresholds[(tree_index, numbered[id(node)])] = split
            unnumbered = [child for child in (node["left_child"], right) if id(child) not in numbered]
            for child in unnumbered:
                numbered[id(child)] = len(numbered)
            stack.extend(reversed(unnumbered))
    return thresholds


def _booster_outputs(graph, objective: str, outputs: list[str]) -> tuple[str, dict]:
    """A Booster answers what ``Booster.predict`` returns: the value, P(positive) or the class probabilities."""
    if objective.startswith(REGRESSION_PREFIXES) and len(outputs) == 1:
        return "regressor", {"predict": {"outputs": [outputs[0]], "squeeze": True}}
    if objective == "binary" and len(outputs) == 2:
        positive_class_only(graph, outputs[1])
        return "generic", {"predict": {"outputs": ["probability"], "squeeze": True}}
    if objective.startswith("multiclass") and len(outputs) == 2:
        del graph.graph.output[0]
        return "generic", {"predict": {"outputs": [outputs[1]]}}
    raise MpackError(
        f"a LightGBM Booster with objective {objective} is not converted to ONNX",
        "log an LGBMClassifier/LGBMRegressor instead, or ship the model as itself with --runtime native (image targets)",
    )
