"""XGBoost and LightGBM logged with mlflow.sklearn (flavor ``sklearn``: skl2onnx with onnxmltools'
converters registered) built for the default Lambda Python, 3.14, whose runtime plan ships the newest
onnxruntime and pins no opset. Unpinned, onnxmltools' converters wrote onnx's newest ai.onnx.ml (5)
and skl2onnx refused the graph; the bundles are now built, verified in a Python 3.14 container and
asked there, through `mpack invoke`, on 2,400 fresh rows with the real column names: the answers
are MLflow's own (``mlflow.pyfunc.load_model(...).predict``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.cli import mpack
from tests.integration.test_named_and_categorical import NAMED, named_frame

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged(store):
    """Registered name -> the fitted model, both logged with mlflow.sklearn to the session's store."""
    import lightgbm
    import mlflow
    import xgboost
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    mlflow.set_tracking_uri(store.uri)
    experiment = mlflow.get_experiment_by_name("tests").experiment_id
    frame, classes = named_frame(1500, seed=3)
    trained = {
        "xgb-sklearn-multi": xgboost.XGBClassifier(n_estimators=40, max_depth=4, objective="multi:softprob").fit(frame, classes),
        "lgbm-sklearn-pipeline": Pipeline([("scale", StandardScaler()), ("trees", lightgbm.LGBMClassifier(n_estimators=40, verbose=-1))]).fit(frame, classes),
    }
    for name, model in trained.items():
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name, serialization_format="cloudpickle")
    return trained


def invoke(bundle, frame, cache, method: str | None = None) -> np.ndarray:
    """The bundle's answer to one ``dataframe_split`` request, run in its Python's container."""
    request = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    if method:
        request["params"] = {"predict_method": method}
    data = cache / "request.json"
    data.write_text(json.dumps(request))
    result = mpack("invoke", str(bundle), "--data-file", str(data), "--json", "--cache-dir", str(cache), timeout=300)
    assert result.returncode == 0, result.stderr
    return np.asarray(json.loads(result.stdout)["predictions"])


@pytest.mark.parametrize("name", ["xgb-sklearn-multi", "lgbm-sklearn-pipeline"])
def test_boosting_logged_with_sklearn_builds_for_the_default_python_and_answers_like_mlflow(store, logged, built, docker_client, tmp_path, monkeypatch, name):
    monkeypatch.delenv("MPACK_PYTHON")  # the default: Python 3.14, newest onnxruntime, no opset pinned
    report = built(f"models:/{name}/1", runtime="onnx")
    assert report.manifest["runtime"]["python"] == "3.14"
    assert report.verification["ran"] and "Python 3.14 container" in report.verification["reason"]
    assert report.parity["passed"] and report.parity["rows"] >= 2000 and "at decision thresholds" in report.parity["source"]
    assert [c["name"] for c in report.manifest["signature"]["columns"]] == NAMED
    import mlflow

    frame = named_frame(2400, seed=17)[0]
    expected = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(frame))
    got = invoke(report.artifact, frame, tmp_path)
    assert got.shape == expected.shape == (2400,) and np.array_equal(got, expected)
    probabilities = invoke(report.artifact, frame, tmp_path, "predict_proba")
    assert np.abs(probabilities - logged[name].predict_proba(frame)).max() <= 1e-5
