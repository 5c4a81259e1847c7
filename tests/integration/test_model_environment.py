"""The model's own environment: an AdaBoost trained and logged under scikit-learn 1.5 (SAMME.R, gone
in 1.6) answers differently when unpickled under this machine's scikit-learn, MLflow's own loader
included. Built with --env-manager uv, the bundle reproduces the logged model's answers; under
--env-manager local the build stops and names both versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.bundle_runner import run_events, unzip
from tests.helpers.cli import assert_clean_error, mpack

pytestmark = pytest.mark.slow
OLD_SKLEARN = "1.5.2"


@pytest.fixture(scope="module")
def old_model(tmp_path_factory) -> Path:
    """Trained and logged (mlflow-skinny) inside a uv environment with scikit-learn 1.5."""
    from mpack.packager.source.environment import uv_binary

    folder = tmp_path_factory.mktemp("old-sklearn")
    venv = folder / "venv"
    subprocess.run([uv_binary(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv_binary(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), f"scikit-learn=={OLD_SKLEARN}", "numpy<2.1", "pandas", "mlflow-skinny"], check=True)
    script = Path(__file__).parents[1] / "helpers" / "old_sklearn_train.py"
    subprocess.run([str(venv / "bin" / "python"), str(script), str(folder)], check=True, capture_output=True)
    return folder


def test_the_logged_model_misloads_under_this_machines_scikit_learn(old_model):
    """The premise: without its environment, MLflow's own loader gives other labels."""
    import mlflow.pyfunc
    import pandas as pd

    truth = json.loads((old_model / "truth.json").read_text())
    labels = mlflow.pyfunc.load_model(str(old_model / "model")).predict(pd.DataFrame(truth["records"]))
    assert np.count_nonzero(np.asarray(labels) != np.asarray(truth["labels"])) > 200


def test_uv_environment_reproduces_the_logged_model(old_model, runtime_cache, tmp_path):
    from mpack.packager.pipeline import BuildOptions, build

    report = build(BuildOptions(model=str(old_model / "model"), output=tmp_path / "ada.zip", cache_dir=runtime_cache, allow_pickle=True))
    assert report.manifest["converter"]["scikit-learn"] == OLD_SKLEARN
    assert report.parity["passed"] and report.parity["rows"] >= 2000
    truth = json.loads((old_model / "truth.json").read_text())
    (labels, proba), _, _ = run_events(
        unzip(report.artifact, tmp_path),
        [
            {"dataframe_records": truth["records"]},
            {"dataframe_records": truth["records"], "params": {"predict_method": "predict_proba"}},
        ],
    )
    assert len(truth["labels"]) == 2400
    assert labels["predictions"] == truth["labels"]
    assert np.abs(np.asarray(proba["predictions"]) - np.asarray(truth["proba"])).max() < 1e-6


def test_local_environment_refuses_with_both_versions(old_model):
    from importlib.metadata import version

    result = mpack("build", "--model", str(old_model / "model"), "--env-manager", "local", "--allow-pickle", "--no-verify")
    assert_clean_error(result, f"scikit-learn=={OLD_SKLEARN}", f"scikit-learn {version('scikit-learn')}", "pip install 'scikit-learn==1.5.2'")


def test_unknown_env_manager_is_named(old_model):
    result = mpack("build", "--model", str(old_model / "model"), "--env-manager", "conda")
    assert_clean_error(result, "--env-manager conda", "uv, local")
