"""A custom PythonModel, which no ONNX graph can express, shipped as itself in a Lambda zip: its own
pinned libraries plus mlflow-skinny, loaded by MLflow's pyfunc loader in the bundle, answering what
MLflow's own loader answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.bundle_runner import run_events, unzip
from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.pyfunc_models import LAMBDA_311_PINS, frame, log_scorer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scorer(store):
    log_scorer(store, "scorer", LAMBDA_311_PINS)
    return "models:/scorer/1"


def test_custom_model_served_natively_from_a_zip(store, built, scorer, tmp_path):
    import mlflow.pyfunc

    report = built(scorer)
    assert report.manifest["native"]["format"] == "pyfunc" and report.manifest["model"]["flavor"] == "python_function"
    assert report.unzipped_bytes < 250 * 2**20 and report.verification["ran"]
    assert report.parity["passed"] and report.parity["rows"] >= 2000
    rows = frame(2400, seed=3)
    (answer,), modules, _ = run_events(unzip(report.artifact, tmp_path), [{"dataframe_records": json.loads(rows.to_json(orient="records"))}])
    assert "mlflow" in modules and "onnxruntime" not in modules
    expected = mlflow.pyfunc.load_model(scorer).predict(rows).to_dict(orient="records")
    got = answer["predictions"]
    assert [r["band"] for r in got] == [r["band"] for r in expected]
    assert np.abs(np.array([r["score"] for r in got]) - np.array([r["score"] for r in expected])).max() < 1e-9


def test_custom_model_needs_allow_pickle(store, scorer, tmp_path):
    result = mpack("build", "--model", scorer, "--output", str(tmp_path / "x.zip"), store=store)
    assert_clean_error(result, "runs its author's code", "--allow-pickle")


def test_pins_without_wheels_for_lambdas_python_say_what_to_do(store, tmp_path):
    """Today's numpy has no wheel for Lambda's Python 3.11 glibc: the build names both ways out."""
    import numpy
    import pandas

    log_scorer(store, "scorer-new-pins", [f"numpy=={numpy.__version__}", f"pandas=={pandas.__version__}"])
    result = mpack("build", "--model", "models:/scorer-new-pins/1", "--allow-pickle", "--output", str(tmp_path / "x.zip"), store=store)
    assert_clean_error(result, "no wheel for Python 3.11", "older pins", "--python 3.12")
