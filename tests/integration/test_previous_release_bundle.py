"""A bundle built by the previous release of mpack (manifest schema 1, one model at the top level)
still runs under today's `mpack invoke` and `mpack serve`, answering as the model itself; today's
build writes schema 2, its models listed."""

from __future__ import annotations

import json
import urllib.request
import zipfile
from pathlib import Path

import pytest
from mpack.handlers.manifest import Manifest

from tests.helpers.cli import mpack
from tests.helpers.models import fraud_frame
from tests.helpers.previous_release import PreviousRelease
from tests.helpers.serve_process import ServeProcess


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory):
    """A small scikit-learn pipeline registered in a real sqlite MLflow store: (uri, estimator, frame)."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("legacy-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    frame, labels = fraud_frame(rows=200, seed=7)
    estimator = Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression())]).fit(frame, labels)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.MlflowClient(uri).create_experiment("legacy", artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(estimator, name="model", input_example=frame.head(3), registered_model_name="legacy")
    finally:
        mlflow.set_tracking_uri(previous)
    return uri, estimator, frame


def _build_options(output: Path, cache: Path) -> list[str]:
    return ["build", "--model", "models:/legacy/1", "--output", str(output), "--cache-dir", str(cache), "--env-manager", "local", "--allow-pickle", "--runtime", "onnx"]


@pytest.fixture(scope="module")
def old_zip(legacy_store, runtime_cache, tmp_path_factory) -> Path:
    """The Lambda zip as the previous release builds it, with its own code (checked: not today's)."""
    folder = tmp_path_factory.mktemp("previous-release")
    release = PreviousRelease(folder)
    output = folder / "legacy-lambda.zip"
    result = release.mpack(*_build_options(output, runtime_cache), env={"MLFLOW_TRACKING_URI": legacy_store[0]})
    assert result.returncode == 0, result.stderr
    assert release.ran_it(result), result.stderr
    return output


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mpack-cache")


def _split(frame) -> dict:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


@pytest.mark.slow
def test_the_previous_release_wrote_schema_1(old_zip):
    with zipfile.ZipFile(old_zip) as archive:
        written = json.loads(archive.read("mpack.json"))  # as on disk: the old format itself
    assert written["schema"] == 1 and "models" not in written and written["model"]["name"] == "legacy"
    read = Manifest.from_dict(written)
    assert read.schema == 1 and [m.name for m in read.models] == ["legacy"] and read.models[0].file == written["model"]["file"]


@pytest.mark.slow
def test_mpack_invoke_runs_the_old_bundle_on_its_input_example(legacy_store, old_zip, cache):
    _, estimator, frame = legacy_store
    result = mpack("invoke", str(old_zip), "--json", "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    assert "input example" in result.stderr
    assert json.loads(result.stdout)["predictions"] == estimator.predict(frame.head(3)).tolist()


@pytest.mark.slow
def test_mpack_serve_answers_mlflow_scoring_requests_from_the_old_bundle(legacy_store, old_zip, cache):
    _, estimator, frame = legacy_store
    rows = frame.iloc[20:45]
    with ServeProcess(old_zip, cache=cache) as server:
        request = urllib.request.Request(f"{server.url}/invocations", data=json.dumps(_split(rows)).encode(), method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            answer = json.loads(response.read())
    assert answer["predictions"] == estimator.predict(rows).tolist()


@pytest.mark.slow
def test_todays_build_writes_schema_2_with_its_model_listed(legacy_store, runtime_cache, tmp_path, cache):
    uri, estimator, frame = legacy_store
    output = tmp_path / "today.zip"
    result = mpack(*_build_options(output, runtime_cache), env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(output) as archive:
        written = json.loads(archive.read("mpack.json"))
    assert written["schema"] == 2 and "model" not in written and [m["name"] for m in written["models"]] == ["legacy"]
    answered = mpack("invoke", str(output), "--json", "--data", json.dumps(_split(frame.head(5))), "--cache-dir", str(cache))
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["predictions"] == estimator.predict(frame.head(5)).tolist()
