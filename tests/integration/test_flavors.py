"""XGBoost, LightGBM and CatBoost models registered in a real MLflow store, built to Lambda zips in their own
environments, answering through the bundle exactly what MLflow's own pyfunc loader answers on
2,400 fresh rows (missing values and values on split thresholds among them)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.bundle_runner import run_events, unzip
from tests.helpers.flavor_models import log_flavor_models, tabular

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flavor_models(store):
    return log_flavor_models(store)


FLAVORS = {"xgb": "xgboost", "lgbm": "lightgbm", "cb": "catboost"}


@pytest.mark.parametrize("name", ["xgb-classifier", "xgb-booster", "lgbm-classifier", "lgbm-booster", "cb-classifier", "cb-regressor", "xgb-pipeline", "lgbm-pipeline"])
def test_bundle_answers_like_mlflows_own_loader(store, built, flavor_models, tmp_path, name):
    import mlflow.pyfunc

    report = built(f"models:/{name}/1")
    assert report.manifest["model"]["flavor"] == ("sklearn" if name.endswith("pipeline") else FLAVORS[name.split("-")[0]])
    assert report.parity["passed"] and report.parity["rows"] >= 2000 and "at decision thresholds" in report.parity["source"]
    frame = tabular(2400, seed=17)[0]
    records = json.loads(frame.to_json(orient="records"))  # NaN -> null, as clients send it
    (answer,), _, _ = run_events(unzip(report.artifact, tmp_path), [{"dataframe_records": records}])
    expected = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(frame))
    got = np.asarray(answer["predictions"])
    assert got.shape == expected.shape  # CatBoost's multiclass labels are a [rows, 1] column
    if name.endswith(("classifier", "pipeline")):
        assert np.array_equal(got, expected)
    else:
        assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_classifier_probabilities_match_the_framework(store, built, flavor_models, tmp_path):
    report = built("models:/lgbm-classifier/1")
    frame = tabular(2400, seed=23)[0]
    request = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False)), "params": {"predict_method": "predict_proba"}}
    (answer,), _, _ = run_events(unzip(report.artifact, tmp_path), [request])
    expected = flavor_models["lgbm-classifier"].predict_proba(frame)
    assert np.abs(np.asarray(answer["predictions"]) - expected).max() < 1e-5


def test_lightgbm_is_served_with_its_float64_thresholds(store, built, flavor_models):
    """LightGBM compares doubles: the graph takes float64 and the booster's own thresholds."""
    report = built("models:/lgbm-classifier/1")
    assert report.manifest["converter"]["thresholds"] == "float64"
    assert {c["dtype"] for c in report.manifest["signature"]["columns"]} == {"float64"}


def test_a_model_the_converter_cannot_express_names_the_ways_forward(tmp_path):
    """XGBoost's categorical splits: onnxmltools has no converter for them."""
    import mlflow.xgboost
    import pandas as pd
    import xgboost

    from mpack.infra.errors import MpackError
    from mpack.packager.pipeline import BuildOptions, build

    frame = pd.DataFrame({"city": pd.Categorical(["a", "b", "c", "a"] * 25), "x": np.arange(100.0)})
    model = xgboost.XGBClassifier(n_estimators=3, enable_categorical=True, tree_method="hist").fit(frame, np.arange(100) % 2)
    mlflow.xgboost.save_model(model, str(tmp_path / "model"))
    with pytest.raises(MpackError) as caught:
        build(BuildOptions(model=str(tmp_path / "model"), output=tmp_path / "out.zip", env_manager="local"))
    assert "categorical" in caught.value.message and "onnxmltools" in caught.value.message
    assert "--runtime native" in caught.value.hint and "mlflow.onnx" in caught.value.hint
