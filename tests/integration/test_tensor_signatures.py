"""Models logged with a tensor signature (trained on numpy arrays) keep their tensor on the wire and
in the graph (DESIGN.md §11): a float32 MLP computes in float32, as scikit-learn does when MLflow feeds
it the signature's float32 array; a float64 forest keeps float64; XGBoost, LightGBM and CatBoost take the tensor
and cast it inside the graph to the dtype they compute in. Answers compared with MLflow's own pyfunc
loader on 2,000 fresh rows, through the bundle, in every request format MLflow takes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.helpers.bundle_runner import run_events, unzip

pytestmark = pytest.mark.slow
FEATURES = 256


def _data(rows: int, seed: int, dtype) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (rows, FEATURES)).astype(dtype)


@pytest.fixture(scope="module")
def tensor_models(store) -> dict:
    """name -> the fitted estimator, each registered as version 1 with a tensor signature."""
    import mlflow
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    mlflow.set_tracking_uri(store.uri)
    narrow = _data(2000, 1, np.float32)
    target = (narrow[:, :8].sum(axis=1) + np.sin(narrow[:, 8])).astype(np.float32)
    mlp = Pipeline([("scale", StandardScaler()), ("mlp", MLPRegressor(hidden_layer_sizes=(64,), max_iter=60, random_state=0))]).fit(narrow, target)
    wide = _data(1500, 2, np.float64)
    forest = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(wide, (wide[:, 0] + wide[:, 1] > 0).astype(int))
    targets = np.stack([target, narrow[:, 3] * 2, -narrow[:, 5]], axis=1)
    several = MLPRegressor(hidden_layer_sizes=(32,), max_iter=40, random_state=0).fit(narrow, targets)
    fitted = {"mlp-float32": mlp, "forest-float64": forest, "mlp-3-targets": several}
    for name, estimator in fitted.items():
        example = (wide if name == "forest-float64" else narrow)[:4]
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(estimator, name="model", input_example=example, registered_model_name=name, serialization_format="cloudpickle")
        assert info.signature.inputs.to_dict()[0]["type"] == "tensor"
    import lightgbm
    import xgboost

    labels = (narrow[:, 0] * 2 + narrow[:, 1] > 0.3).astype(int) + (narrow[:, 2] > 1).astype(int)
    fitted["xgb-float32"] = xgboost.XGBClassifier(n_estimators=25, max_depth=4).fit(narrow, labels)
    fitted["lgbm-float64"] = lightgbm.LGBMRegressor(n_estimators=30, verbose=-1).fit(wide, wide[:, 0] * 3 + np.abs(wide[:, 4]))
    import catboost

    fitted["cb-float32"] = catboost.CatBoostRegressor(iterations=30, depth=4, verbose=False, random_seed=0).fit(narrow, target)
    for name, module, data in (("xgb-float32", mlflow.xgboost, narrow), ("lgbm-float64", mlflow.lightgbm, wide), ("cb-float32", mlflow.catboost, narrow)):
        with mlflow.start_run():
            info = module.log_model(fitted[name], name="model", input_example=data[:4], registered_model_name=name)
        assert info.signature.inputs.to_dict()[0]["type"] == "tensor"
    return fitted


@pytest.mark.parametrize("name,dtype", [("mlp-float32", "float32"), ("forest-float64", "float64"), ("xgb-float32", "float32"), ("lgbm-float64", "float64"), ("cb-float32", "float32")])
def test_the_tensor_stays_on_the_wire_and_in_the_graph(built, tensor_models, name, dtype):
    report = built(f"models:/{name}/1", runtime="onnx")
    signature = report.manifest["signature"]
    assert signature["layout"] == "tensors"
    assert signature["inputs"] == [{"name": "input", "dtype": dtype, "shape": [-1, FEATURES]}]
    assert report.parity["passed"] and report.parity["rows"] >= 2000
    with __import__("zipfile").ZipFile(report.artifact) as bundle:
        graph = onnx.load_from_string(bundle.read(report.manifest["model"]["file"]))
    element = onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE
    assert [i.type.tensor_type.elem_type for i in graph.graph.input] == [element]
    if name == "mlp-float32":  # float32 arithmetic throughout: no float64 weight, no cast to double
        assert not [i.name for i in graph.graph.initializer if i.data_type == onnx.TensorProto.DOUBLE]
        assert not [n.name for n in graph.graph.node if n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.DOUBLE for a in n.attribute)]


@pytest.mark.parametrize("name,dtype", [("mlp-float32", np.float32), ("forest-float64", np.float64), ("mlp-3-targets", np.float32), ("xgb-float32", np.float32), ("lgbm-float64", np.float64), ("cb-float32", np.float32)])
def test_the_bundle_answers_like_mlflows_loader_in_every_request_format(built, tensor_models, tmp_path, name, dtype):
    import mlflow.pyfunc

    report = built(f"models:/{name}/1", runtime="onnx")
    rows = _data(2000, 9, dtype)
    expected = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(rows))
    assert np.array_equal(expected.reshape(-1), np.asarray(tensor_models[name].predict(rows)).reshape(-1))  # MLflow feeds the array as it is
    assert expected.shape[0] == 2000 and (name != "mlp-3-targets" or expected.shape == (2000, 3))  # a row per row, whatever skl2onnx flattens
    plain = rows.tolist()
    requests = [
        {"inputs": plain},
        {"instances": plain},
        {"dataframe_split": {"columns": [str(i) for i in range(FEATURES)], "data": plain}},
    ]
    answers, _, _ = run_events(unzip(report.artifact, tmp_path), requests)
    for request, answer in zip(requests, answers):
        got = np.asarray(answer["predictions"])
        assert got.shape == expected.shape, next(iter(request))
        if expected.dtype.kind == "f":
            assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max()), next(iter(request))
        else:
            assert np.array_equal(got, expected), next(iter(request))


def test_a_row_of_the_wrong_width_is_refused_naming_the_tensor(built, tensor_models, tmp_path):
    report = built("models:/mlp-float32/1", runtime="onnx")
    (answer,), _, _ = run_events(unzip(report.artifact, tmp_path), [{"inputs": [[0.5] * (FEATURES - 1)]}])
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE" and "input" in answer["message"] and str(FEATURES) in answer["message"], answer


@pytest.mark.parametrize("name,dtype", [("forest-float64", np.float64), ("lgbm-float64", np.float64), ("xgb-float32", np.float32)])
def test_the_micro_runtime_serves_a_tensor_of_features(built, tensor_models, tmp_path, name, dtype):
    """Tree models logged with a tensor signature compile to standard-library Python like column
    models do: the same answers as MLflow's loader, a wrong row refused naming the input."""
    import mlflow.pyfunc

    report = built(f"models:/{name}/1", runtime="micro")
    assert report.manifest.get("micro") and report.manifest["signature"]["layout"] == "tensors"
    rows = _data(2000, 13, dtype)
    expected = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(rows))
    answers, _, _ = run_events(unzip(report.artifact, tmp_path), [{"inputs": rows.tolist()}, {"instances": rows[0].tolist()}, {"inputs": [[1.0] * 3]}, {"inputs": [["1.0"] * FEATURES]}, {"inputs": [[1e39] * FEATURES]}])
    got = np.asarray(answers[0]["predictions"])
    if expected.dtype.kind == "f":
        assert np.abs(got.reshape(expected.shape) - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    else:
        assert np.array_equal(got.reshape(expected.shape), expected)
    assert np.array_equal(np.asarray(answers[1]["predictions"]).reshape(-1), got.reshape(len(got), -1)[0])  # one row alone: the same answer
    for refused in answers[2:4]:
        assert refused["error_code"] == "INVALID_PARAMETER_VALUE" and "'input'" in refused["message"], refused
    assert ("outside the range" in answers[4].get("message", "")) == (dtype == np.float32), answers[4]
