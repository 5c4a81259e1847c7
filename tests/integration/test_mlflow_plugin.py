"""The MLflow deployments plugin (``-t mpack-lambda``), driven by MLflow's own CLI and by
``mlflow.deployments.get_deploy_client``.

What is real: MLflow's CLI and plugin loading (the entry point installed with the package), the registry
(a sqlite store with sklearn models trained in the test session), mpack's build of each version, boto3 and
every AWS call, answered by moto's server (functions, versions, weighted aliases, the IAM role), and the
local smoke test (``-C smoke-test=local``: the zip being deployed, run on mpack's local Lambda platform).
What is not: moto's Lambda does not run code (its invoke echoes the payload), so ``predict`` is checked
against ``mpack serve`` on the very bundle the plugin deployed: boto3 honours ``AWS_ENDPOINT_URL_LAMBDA``,
and mpack serve's front door is Lambda's Invoke API (the alias answered as $LATEST with ``--alias``);
its predictions must equal scikit-learn's on the same rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.moto import CREDENTIALS, aws_clients, moto_server
from tests.helpers.serve_process import ServeProcess

TARGET = "mpack-lambda:/us-east-1"
MLFLOW = str(Path(sys.executable).parent / "mlflow")


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def kept_bundles(runtime_cache) -> Path:
    """Where the plugin keeps what it built (in its cache folder): emptied once, so each version builds once here."""
    folder = runtime_cache / "mlflow-deployments"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


@pytest.fixture(scope="module")
def env(store, moto_endpoint, kept_bundles) -> dict:
    return {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint, "MLFLOW_TRACKING_URI": store.uri}


@pytest.fixture(scope="module")
def lambda_client(moto_endpoint):
    return aws_clients(moto_endpoint, "lambda", "iam")


def deployments(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([MLFLOW, "deployments", *args], check=False, capture_output=True, text=True, env=env, timeout=timeout)


def cache_option(runtime_cache: Path) -> list[str]:
    return ["-C", f"cache-dir={runtime_cache}"]


def alias_of(lambda_client, function: str, alias: str = "live") -> dict:
    found = lambda_client["lambda"].get_alias(FunctionName=function, Name=alias)
    return {"version": found["FunctionVersion"], "weights": (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}}


def printed(result: subprocess.CompletedProcess) -> dict:
    """`mlflow deployments get` prints ``key: value`` lines."""
    return dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)


def kept(kept_bundles: Path, name: str, version: int) -> Path:
    (bundle,) = kept_bundles.glob(f"{name}-{version}-lambda-*.zip")
    return bundle


def test_help_and_config_keys_are_typed_and_unknown_ones_refused(store, env):
    helped = deployments(env, "help", "-t", "mpack-lambda")
    assert helped.returncode == 0, helped.stderr
    assert "mpack-lambda:/REGION" in helped.stdout and "canary (float)" in helped.stdout and "smoke-test (aws | local | none)" in helped.stdout
    unknown = deployments(env, "create", "-t", TARGET, "--name", "typo", "-m", "models:/fraud/1", "-C", "colour=blue")
    assert unknown.returncode != 0
    assert "unknown config key(s) colour" in unknown.stderr and "valid keys: region, alias, target, canary, memory, timeout" in unknown.stderr
    wrong_type = deployments(env, "create", "-t", TARGET, "--name", "typo", "-m", "models:/fraud/1", "-C", "memory=lots")
    assert wrong_type.returncode != 0 and "-C memory=lots: not a whole number (expected int)" in wrong_type.stderr
    bad_target = deployments(env, "create", "-t", TARGET, "--name", "typo", "-m", "models:/fraud/1", "-C", "target=azure")
    assert bad_target.returncode != 0 and "not one of lambda, lambda-image" in bad_target.stderr


@pytest.mark.slow
def test_cli_create_get_list_canary_promote_predict_delete(store, env, lambda_client, runtime_cache, kept_bundles, tmp_path):
    created = deployments(env, "create", "-t", TARGET, "--name", "fraud", "-m", "models:/fraud/1", "-C", "smoke-test=local", "-C", "memory=512", *cache_option(runtime_cache))
    assert created.returncode == 0, created.stderr
    assert re.search(r"\w+ deployment fraud is created", created.stdout)
    assert alias_of(lambda_client, "fraud") == {"version": "1", "weights": {}}
    assert lambda_client["lambda"].get_function_configuration(FunctionName="fraud")["MemorySize"] == 512
    again = deployments(env, "create", "-t", TARGET, "--name", "fraud", "-m", "models:/fraud/1", *cache_option(runtime_cache))
    assert again.returncode != 0 and "already exists" in again.stderr  # MLflow's contract: create does not overwrite

    got = deployments(env, "get", "-t", TARGET, "--name", "fraud")
    assert got.returncode == 0, got.stderr
    assert {k: printed(got)[k] for k in ("function", "alias", "version", "model_name", "model_version")} == {"function": "fraud", "alias": "live", "version": "1", "model_name": "fraud", "model_version": "1"}
    listed = deployments(env, "list", "-t", TARGET)
    assert listed.returncode == 0 and "'name': 'fraud'" in listed.stdout, listed.stderr

    canary = deployments(env, "update", "-t", TARGET, "--name", "fraud", "-m", "models:/fraud/2", "-C", "canary=10", "-C", "smoke-test=local", "-C", "memory=512", *cache_option(runtime_cache))
    assert canary.returncode == 0, canary.stderr
    assert "Deployment fraud is updated" in canary.stdout
    assert alias_of(lambda_client, "fraud") == {"version": "1", "weights": {"2": 0.1}}
    during = printed(deployments(env, "get", "-t", TARGET, "--name", "fraud"))
    assert (during["model_version"], during["canary_version"], during["canary_percent"], during["canary_model_version"]) == ("1", "2", "10.0", "2")

    promoted = deployments(env, "update", "-t", TARGET, "--name", "fraud")  # no model: the canary takes all the traffic
    assert promoted.returncode == 0, promoted.stderr
    assert alias_of(lambda_client, "fraud") == {"version": "2", "weights": {}}
    after = printed(deployments(env, "get", "-t", TARGET, "--name", "fraud"))
    assert (after["version"], after["model_version"]) == ("2", "2") and "canary_version" not in after

    rows = store.frames["fraud"].head(6)
    (tmp_path / "in.json").write_text(rows.to_json(orient="records"))
    with ServeProcess(kept(kept_bundles, "fraud", 2), "--name", "fraud", "--alias", "live", cache=runtime_cache) as served:
        predicted = deployments({**env, "AWS_ENDPOINT_URL_LAMBDA": served.url}, "predict", "-t", TARGET, "--name", "fraud", "--input-path", str(tmp_path / "in.json"), "--output-path", str(tmp_path / "out.json"))
    assert predicted.returncode == 0, predicted.stderr
    predictions = json.loads((tmp_path / "out.json").read_text())["predictions"]
    np.testing.assert_array_equal(np.asarray(predictions).ravel(), store.estimators["logistic"].predict(rows))  # version 2: the logistic regression

    for _ in range(2):  # idempotent: the second finds nothing and is no error
        deleted = deployments(env, "delete", "-t", TARGET, "--name", "fraud")
        assert deleted.returncode == 0, deleted.stderr
        assert "Deployment fraud is deleted" in deleted.stdout
    with pytest.raises(lambda_client["lambda"].exceptions.ResourceNotFoundException):
        lambda_client["lambda"].get_function(FunctionName="fraud")
    with pytest.raises(lambda_client["iam"].exceptions.NoSuchEntityException):
        lambda_client["iam"].get_role(RoleName="mpack-fraud")
    gone = deployments(env, "get", "-t", TARGET, "--name", "fraud")
    assert gone.returncode != 0 and "no deployment fraud in us-east-1" in gone.stderr
    assert len(list(kept_bundles.glob("fraud-*.zip"))) == 2  # one build per version


@pytest.mark.slow
def test_python_client_deploys_an_alias_and_predicts(store, env, lambda_client, runtime_cache, kept_bundles, monkeypatch):
    import mlflow
    from mlflow.deployments import PredictionsResponse, get_deploy_client
    from mlflow.exceptions import MlflowException

    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(key, env[key])
    mlflow.set_tracking_uri(store.uri)
    client = get_deploy_client(TARGET)
    made = client.create_deployment("fraud-py", "models:/fraud@champion", config={"smoke-test": "local", "cache-dir": str(runtime_cache), "timeout": 20})
    assert (made["name"], made["model_name"], made["model_version"], made["version"]) == ("fraud-py", "fraud", "1", "1") and made["flavor"]
    assert {"name": "fraud-py"}.items() <= client.get_deployment("fraud-py").items()
    assert "fraud-py" in [d["name"] for d in client.list_deployments()]
    with pytest.raises(MlflowException, match="valid keys: region, alias"):
        client.update_deployment("fraud-py", "models:/fraud/1", config={"memmory": "256"})
    with pytest.raises(MlflowException, match="not what mpack serves"):
        client.create_deployment("other", "models:/fraud/1", flavor="tensorflow", config={"cache-dir": str(runtime_cache)})
    with pytest.raises(NotImplementedError, match="serves predictions only"):
        client.explain("fraud-py", None)

    with pytest.raises(MlflowException, match="did not predict"):
        client.predict("fraud-py", store.frames["fraud"].head(2))  # moto echoes the request back: no predictions, said so
    rows = store.frames["fraud"].head(5)
    with ServeProcess(kept(kept_bundles, "fraud", 1), "--name", "fraud-py", "--alias", "live", cache=runtime_cache) as served:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", served.url)
        answer = client.predict("fraud-py", rows)
    assert isinstance(answer, PredictionsResponse)
    np.testing.assert_array_equal(answer.get_predictions(predictions_format="ndarray").ravel(), store.estimators["fraud"].predict(rows))

    monkeypatch.delenv("AWS_ENDPOINT_URL_LAMBDA")
    client.delete_deployment("fraud-py")
    client.delete_deployment("fraud-py")
    assert "fraud-py" not in [d["name"] for d in client.list_deployments()]
    assert len(list(kept_bundles.glob("fraud-1-*.zip"))) == 1  # the alias resolved to version 1, already built: reused


@pytest.mark.slow
def test_run_local_builds_and_serves_the_alias(store, env, runtime_cache, kept_bundles):
    process = subprocess.Popen(
        [MLFLOW, "deployments", "run-local", "-t", "mpack-lambda", "--name", "fraud-local", "-m", "models:/fraud/1", "-C", "port=0", *cache_option(runtime_cache)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines, url, deadline = [], None, time.monotonic() + 300
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stderr.readline()
            lines.append(line)
            found = re.search(r"Invoke API\s+(http://[\d.]+:\d+)/2015-03-31/functions/fraud-local/invocations \(aliases live", line)
            url = found.group(1) if found else None
        assert url, "".join(lines)
        import boto3

        invoked = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        rows = store.frames["fraud"].head(3)
        reply = invoked.invoke(FunctionName="fraud-local", Qualifier="live", Payload=json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}))
        predictions = json.loads(reply["Payload"].read())["predictions"]
        np.testing.assert_array_equal(np.asarray(predictions).ravel(), store.estimators["fraud"].predict(rows))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
