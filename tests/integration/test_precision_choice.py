"""--precision auto through the real build (issue 22): an MLP fitted on float64 data (regressor and
classifier) ships float32 when the float32 variant passes the parity gate and is faster, float64
when a tight --tolerance makes the variant fail; the bundle answers like the model either way, on
the local Lambda platform's own runner. Trees keep scikit-learn's own float32 cast: nothing weighed."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from mpack.infra.errors import MpackError

from tests.helpers.bundle_runner import run_events, unzip

FEATURES = 64


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, FEATURES)), columns=[f"x{i}" for i in range(FEATURES)])


@pytest.fixture(scope="module")
def mlp_models(store):
    """An MLP regressor and classifier fitted on float64 frames, registered in the test store."""
    import mlflow
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    frame = _frame(600, 5)
    weights = np.random.default_rng(6).normal(size=FEATURES)
    target = np.tanh(frame.to_numpy() @ weights / 8)
    estimators = {
        "mlp64-regressor": MLPRegressor(hidden_layer_sizes=(128,), max_iter=60, random_state=0).fit(frame, target),
        "mlp64-classifier": MLPClassifier(hidden_layer_sizes=(128,), max_iter=60, random_state=0).fit(frame, (target > 0.2).astype(int) + (target > -0.2)),
    }
    mlflow.set_tracking_uri(store.uri)
    for name, estimator in estimators.items():
        with mlflow.start_run():
            mlflow.sklearn.log_model(estimator, name="model", input_example=frame.head(5), registered_model_name=name, serialization_format="cloudpickle")
    return estimators


def _answers(report, frame: pd.DataFrame, folder, method: str | None = None) -> np.ndarray:
    request = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
    if method:
        request["params"] = {"predict_method": method}
    (answer,), _, _ = run_events(unzip(report.artifact, folder), [request])
    return np.asarray(answer["predictions"])


@pytest.mark.parametrize("name", ["mlp64-regressor", "mlp64-classifier"])
def test_auto_ships_float32_when_it_passes_and_is_faster(built, mlp_models, tmp_path, name):
    report = built(f"models:/{name}/1", runtime="onnx")
    choice = report.runtime_choice["precision_choice"]
    assert set(choice["measured"]) == {"fp64", "fp32"} and set(choice["parity"]) == {"fp64", "fp32"}
    assert choice["parity"]["fp32"]["passed"] and choice["parity"]["fp32"]["rows"] >= 1000
    for figures in choice["measured"].values():
        assert figures["warm_1_row_us"] > 0 and figures["warm_1000_rows_us"] > figures["warm_1_row_us"]
    fp64, fp32 = choice["measured"]["fp64"], choice["measured"]["fp32"]
    assert choice["chosen"] == "fp32", choice  # a 64-input, 128-wide MLP: float32 is several times faster at 1,000 rows
    assert fp32["warm_1000_rows_us"] < fp64["warm_1000_rows_us"]
    assert report.runtime_choice["precision"] == "fp32" and report.manifest["build"]["precision"] == "fp32"
    frame = _frame(800, 11)
    estimator = mlp_models[name]
    got = _answers(report, frame, tmp_path / "bundle")
    if name.endswith("classifier"):
        probabilities = _answers(report, frame, tmp_path / "proba", "predict_proba")
        expected = estimator.predict_proba(frame)
        assert np.abs(probabilities - expected).max() <= 1e-5
        top = np.sort(expected, axis=1)
        ties = top[:, -1] - top[:, -2] <= 1e-5
        assert np.array_equal(got[~ties], estimator.predict(frame)[~ties])
    else:
        expected = estimator.predict(frame)
        assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    with zipfile.ZipFile(report.artifact) as archive:
        graph = archive.read("model.onnx")
    import onnx

    model = onnx.load_from_string(graph)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE  # the interface is unchanged
    assert not [t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.DOUBLE]


def test_a_tight_tolerance_ships_float64_and_says_why(built, mlp_models, tmp_path):
    report = built("models:/mlp64-regressor/1", runtime="onnx", tolerance=1e-12)
    choice = report.runtime_choice
    assert choice["precision"] == "fp64" and report.manifest["build"]["precision"] == "fp64"
    assert "did not pass the parity gate" in choice["not_weighed"]["onnx fp32"]
    assert not any("fp32" in warning for warning in report.warnings)  # a candidate weighed and dropped is no warning
    frame = _frame(300, 12)
    got = _answers(report, frame, tmp_path / "bundle")
    assert np.abs(got - mlp_models["mlp64-regressor"].predict(frame)).max() <= 1e-9


def test_named_precisions_are_obeyed_or_refused(built, mlp_models, store, tmp_path):
    fp64 = built("models:/mlp64-regressor/1", runtime="onnx", precision="fp64")
    assert fp64.runtime_choice["precision"] == "fp64" and fp64.runtime_choice["precision_choice"] is None
    fp32 = built("models:/mlp64-regressor/1", runtime="onnx", precision="fp32")
    assert fp32.runtime_choice["precision"] == "fp32" and fp32.parity["passed"]
    with pytest.raises(MpackError, match="parity check failed for onnx fp32"):
        built("models:/mlp64-regressor/1", runtime="onnx", precision="fp32", tolerance=1e-12)


def test_trees_weigh_no_precision(built):
    report = built("models:/fraud/1", runtime="onnx")  # StandardScaler + GradientBoosting: scikit-learn casts to float32 itself
    assert report.runtime_choice["precision_choice"] is None and report.runtime_choice["precision"] == "fp32"
    assert json.loads(json.dumps(report.to_dict()))["runtime_choice"]["precision"] == "fp32"


def _float64_graph(path, batch) -> str:
    """A bare .onnx file: two float64 inputs added, then multiplied by float64 weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(3).normal(size=(4, 3)), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("MatMul", ["s", "w"], ["y"])],
        "two-inputs",
        [helper.make_tensor_value_info("a", TensorProto.DOUBLE, [batch, 4]), helper.make_tensor_value_info("b", TensorProto.DOUBLE, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [batch, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


@pytest.mark.parametrize("batch", ["N", 1])
def test_several_float64_inputs_and_a_fixed_batch_are_weighed_or_left_as_converted(runtime_cache, tmp_path, batch):
    """Two tensor inputs are measured together; a graph that takes exactly one row cannot be measured
    on 1,000: it ships as converted, said so."""
    from mpack.packager.pipeline import BuildOptions, build

    report = build(BuildOptions(model=_float64_graph(tmp_path / "m.onnx", batch), output=tmp_path / "m.zip", python="3.11", cache_dir=runtime_cache))
    choice = report.runtime_choice
    assert report.verification["ran"] and report.parity["passed"]
    if batch == 1:
        assert choice["precision"] == "fp64" and "not measured" in choice["not_weighed"]["onnx fp32"]
    else:
        assert set(choice["precision_choice"]["measured"]) == {"fp64", "fp32"}
