"""The small pieces the flavor converters are built from: threshold probes read from a graph, the
LightGBM threshold matching, tensor check rows, graph renaming, the pyfunc archive."""

from __future__ import annotations

import numpy as np
import pytest

from mpack.packager.check.graph_thresholds import graph_splits, graph_threshold_records, split_values
from mpack.packager.convert.tensor_models import TensorCheck, input_names, output_names, rename_graph_values
from mpack.packager.source.mlmodel import Column


def test_split_values_sit_on_and_around_the_threshold():
    values = split_values(0.1)
    assert 0.1 in values and float(np.float32(0.1)) in values
    assert np.nextafter(0.1, -np.inf) in values and np.nextafter(0.1, np.inf) in values
    assert float(np.nextafter(np.float32(0.1), np.float32(-np.inf))) in values
    assert values == sorted(values)


def _tree_graph():
    from onnx import TensorProto, helper

    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["input"],
        ["variable"],
        domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0],
        nodes_nodeids=[0, 1, 2],
        nodes_featureids=[1, 0, 0],
        nodes_values=[2.5, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0],
        target_ids=[0, 0],
        target_nodeids=[1, 2],
        target_treeids=[0, 0],
        target_weights=[1.0, 2.0],
        n_targets=1,
    )
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])], [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)])


def test_graph_threshold_records_move_the_split_feature_only():
    graph = _tree_graph()
    assert graph_splits(graph) == [(1, 2.5)]
    columns = (Column("a", "double"), Column("b", "long"))
    rows = graph_threshold_records(graph, columns, ({"a": 7.0, "b": 0},))
    assert {r["b"] for r in rows} == {2, 3} and all(r["a"] == 7.0 for r in rows)
    assert graph_threshold_records(graph, columns, ()) == ()


def test_lightgbm_gets_its_own_float64_thresholds():
    import lightgbm

    from mpack.packager.convert.lightgbm_model import _thresholds_by_node, exact_thresholds

    x = np.random.default_rng(0).normal(size=(300, 3))
    model = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(x, x[:, 0] * 2 + x[:, 1])
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    graph = onnxmltools.convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, 3]))], target_opset=15)
    from mpack.packager.convert.boosted_trees import pin_opsets

    pin_opsets(graph, None)
    dump = model.booster_.dump_model()
    assert len(_thresholds_by_node(dump)) >= len(graph_splits(graph)) > 0
    assert exact_thresholds(graph, dump)
    assert graph.graph.input[0].type.tensor_type.elem_type == 11  # double
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0].reshape(-1)
    assert np.abs(got - model.predict(x)).max() < 1e-5


def test_tensor_check_has_two_thousand_rows_led_by_the_example():
    specs = ({"name": None, "dtype": "float32", "shape": [-1, 4]},)
    example = {"input": [[1.0, 2.0, 3.0, 4.0]]}
    check = TensorCheck(specs, example)
    rows = check.document["inputs"]["input"]
    assert len(rows) == 2000 and rows[0] == [1.0, 2.0, 3.0, 4.0]
    (array,) = check.arrays(specs)
    assert array.dtype == np.float32 and array.shape == (2000, 4)
    big = TensorCheck(({"name": "image", "dtype": "uint8", "shape": [-1, 3, 224, 224]},), None)
    assert 16 <= big.rows < 2000  # a large row: fewer rows, never an oversized request
    assert input_names(({"name": None},)) == ["input"] and input_names(({"name": "a"}, {"name": None})) == ["a", "input_1"]
    assert output_names(()) == ["output"]


def test_unsupported_tensor_dtype_is_named():
    from mpack.infra.errors import MpackError

    with pytest.raises(MpackError, match="dtype complex64"):
        TensorCheck(({"name": "z", "dtype": "complex64", "shape": [-1, 2]},), None)


def test_rename_graph_values_rewires_nodes():
    graph = _tree_graph()
    rename_graph_values(graph, ["features"], ["score"])
    assert graph.graph.input[0].name == "features" and graph.graph.output[0].name == "score"
    assert list(graph.graph.node[0].input) == ["features"] and list(graph.graph.node[0].output) == ["score"]


def test_pyfunc_archive_is_byte_identical_across_rebuilds(tmp_path):
    import os
    import tarfile

    from mpack.packager.convert.pyfunc_native import folder_archive

    (tmp_path / "m" / "artifacts").mkdir(parents=True)
    (tmp_path / "m" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "m" / "artifacts" / "w.bin").write_bytes(b"\x00\x01")
    first = folder_archive(tmp_path / "m")
    os.utime(tmp_path / "m" / "MLmodel", (1, 1))
    assert folder_archive(tmp_path / "m") == first
    import io

    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        assert archive.getnames() == ["MLmodel", "artifacts/w.bin"]


def test_the_parity_gate_refuses_answers_of_another_shape_with_the_same_values():
    """[rows * 3, 1] holds the values of [rows, 3], in order, and is still a wrong answer: each client
    row would get three rows back. [rows, 1] for [rows] is the same answer."""
    import numpy as np

    from mpack.packager.check.parity import _compare

    expected = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert not _compare("predict", "variable", expected.reshape(-1, 1), expected, 1e-5, None).passed
    assert _compare("predict", "variable", expected, expected, 1e-5, None).passed
    column = np.arange(4, dtype=np.float64)
    assert _compare("predict", "variable", column.reshape(-1, 1), column, 1e-5, None).passed


def test_a_tensor_of_another_dtype_than_the_model_computes_in_is_cast_inside_the_graph():
    """A float32 tensor signature over a graph that computes in float64 (LightGBM's exact thresholds):
    the graph takes float32, named as the tensor, and casts it exactly as MLflow's float32 array
    reaches LightGBM; same dtypes: renamed only."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from mpack.packager.convert.tensor_signature import _feed_tensor

    for computed, wire, casts in ((TensorProto.DOUBLE, "float32", True), (TensorProto.FLOAT, "float32", False)):
        graph = helper.make_model(
            helper.make_graph([helper.make_node("Mul", ["input", "input"], ["squared"])], "g", [helper.make_tensor_value_info("input", computed, [None, 2])], [helper.make_tensor_value_info("squared", computed, [None, 2])]),
            opset_imports=[helper.make_opsetid("", 17)],
        )
        _feed_tensor(graph, {"name": "features", "dtype": wire, "shape": [-1, 2]})
        assert [i.name for i in graph.graph.input] == ["features"] and graph.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
        assert any(n.op_type == "Cast" for n in graph.graph.node) == casts
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        rows = np.array([[0.1, 3.0]], dtype=np.float32)
        (answer,) = session.run(None, {"features": rows})
        assert np.array_equal(answer, rows.astype(np.float64 if casts else np.float32) ** 2)
