"""The float32 variant's graph rewrite on small hand-made graphs (what scikit-learn's converters do
not show: a tree's preprocessing sharing a weight with arithmetic, Constant values, inner casts to
double, operators it cannot rewrite), and the float32-or-float64 decision from two measurements."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mpack.packager.convert.float32_choice import Latency, prefer_float32
from mpack.packager.convert.float32_variant import Float32Unavailable, computes_in_float64, float32_variant
from onnx import TensorProto, helper, numpy_helper

DOUBLE, FLOAT = TensorProto.DOUBLE, TensorProto.FLOAT


def _tree_and_arithmetic() -> bytes:
    """x - offset feeds a tree (scikit-learn's float64 preprocessing, then its float32 cast);
    (x + offset) * 3, cast to double again, is arithmetic of the graph's own."""
    tree = helper.make_node(
        "TreeEnsembleRegressor", ["tree_in"], ["tree"], domain="ai.onnx.ml", n_targets=1,
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0], nodes_values=[0.1, 0.0, 0.0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0], target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[-1.0, 1.0],
    )  # fmt: skip
    nodes = [
        helper.make_node("Sub", ["x", "offset"], ["centered"]),
        helper.make_node("Cast", ["centered"], ["tree_in"], to=FLOAT),
        tree,
        helper.make_node("Add", ["x", "offset"], ["shifted"]),
        helper.make_node("Constant", [], ["three"], value=numpy_helper.from_array(np.array(3.0), "three")),
        helper.make_node("Mul", ["shifted", "three"], ["tripled"]),
        helper.make_node("Cast", ["tripled"], ["values"], to=DOUBLE),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", DOUBLE, [None, 2])],
        [helper.make_tensor_value_info("values", DOUBLE, [None, 2]), helper.make_tensor_value_info("tree", FLOAT, [None, 1])],
        [numpy_helper.from_array(np.array([0.1, -0.2]), "offset")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)], ir_version=8).SerializeToString()


def test_arithmetic_goes_float32_while_a_trees_preprocessing_stays_float64():
    original = _tree_and_arithmetic()
    assert computes_in_float64(original)
    variant = onnx.load_from_string(float32_variant(original))
    nodes = {node.output[0]: node for node in variant.graph.node}
    weights = {t.name: t for t in variant.graph.initializer}

    assert nodes["centered"].input[1] == "offset" and weights["offset"].data_type == DOUBLE  # the tree's input as scikit-learn computes it
    assert nodes["shifted"].input[1] != "offset" and weights[nodes["shifted"].input[1]].data_type == FLOAT  # a float32 copy of the shared weight
    assert nodes["three"].attribute[0].t.data_type == FLOAT
    assert [a.i for a in nodes["values"].attribute] == [DOUBLE]  # the exit cast: the output stays float64
    inner = [node for node in variant.graph.node if node.op_type == "Cast" and node.output[0] not in ("values", "tree_in")]
    assert sorted((node.input[0], node.attribute[0].i) for node in inner) == [("tripled", FLOAT), ("x", FLOAT)]  # the inner cast to double, and one entry cast

    x = np.array([[0.05, 1.0], [0.3, -7.5], [1e6 + 0.1, 2.0]])
    want = ort.InferenceSession(original).run(None, {"x": x})
    got = ort.InferenceSession(variant.SerializeToString()).run(None, {"x": x})
    assert got[0].dtype == np.float64 and np.allclose(got[0], (x + [0.1, -0.2]) * 3, rtol=1e-7) and not np.array_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1]) and got[1].ravel().tolist() == [-1.0, 1.0, 1.0]  # the tree's answers untouched


def test_an_operator_it_cannot_rewrite_is_named():
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x", "x"], ["pair"]), helper.make_node("ConcatFromSequence", ["pair"], ["both"], axis=0), helper.make_node("Exp", ["both"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", DOUBLE, [None, 2])],
        [helper.make_tensor_value_info("y", DOUBLE, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    assert computes_in_float64(model)
    with pytest.raises(Float32Unavailable, match="SequenceConstruct") as refused:
        float32_variant(model)
    assert refused.value.op == "SequenceConstruct"


def test_float32_ships_only_when_it_passes_and_is_faster_beyond_noise():
    float64 = Latency(one_row_us=50.0, batch_us=2000.0)
    assert prefer_float32(True, float64, Latency(10.0, 500.0))
    assert prefer_float32(True, float64, Latency(51.0, 1000.0))  # as fast on a row (within 5 %), twice on a batch
    assert not prefer_float32(False, float64, Latency(10.0, 500.0))  # failed the parity gate
    assert not prefer_float32(True, float64, Latency(49.0, 1990.0))  # within noise
    assert not prefer_float32(True, float64, Latency(10.0, 2500.0))  # faster on a row, slower on a batch
