"""--runtime micro: models registered in a real MLflow store, compiled to standard-library Python,
answering through the real bundle exactly what the onnxruntime bundle and the original model answer
on 2,400 fresh rows (missing values and values on split thresholds among them); unsupported
operators named; the bundle run by the real awslambdaric on the local platform with nothing but the
standard library; logs and metrics in Powertools' shapes."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from mpack.infra.errors import MpackError

from tests.helpers.bundle_runner import run_events, unzip
from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.flavor_models import log_flavor_models, tabular

pytestmark = pytest.mark.slow
STDLIB_ONLY = ("numpy", "onnxruntime", "aws_lambda_powertools", "pandas", "sklearn")
POWERTOOLS_KEYS = {"level", "location", "message", "timestamp", "service", "cold_start", "function_name", "function_memory_size", "function_arn", "function_request_id"}


@pytest.fixture(scope="module")
def flavor_models(store):
    return log_flavor_models(store)


def _frame_request(frame, method: str | None = None) -> dict:
    request = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}  # NaN -> null
    if method:
        request["params"] = {"predict_method": method}
    return request


def _answers(report, folder, requests: list) -> tuple[list, list]:
    answers, modules, _ = run_events(unzip(report.artifact, folder), requests)
    return answers, modules


def _answers_agree(micro, onnx, requests: list, tmp_path) -> list:
    """Both bundles answer ``requests`` in isolated interpreters; the micro one importing nothing
    outside the standard library, and answering what the onnxruntime one answers."""
    micro_answers, modules = _answers(micro, tmp_path, requests)
    onnx_answers, _ = _answers(onnx, tmp_path, requests)
    assert not [m for m in STDLIB_ONLY if m in modules]
    for got, expected in zip(micro_answers, onnx_answers):
        _assert_same(got["predictions"], expected["predictions"])
    return micro_answers


def _assert_same(micro: list, onnx: list) -> None:
    """Labels equal; values within 1e-6 (scaled by magnitude, as the parity gate scales them)."""
    got, expected = np.asarray(micro), np.asarray(onnx)
    assert got.shape == expected.shape
    if got.dtype.kind in "fc":
        assert np.all(np.abs(got - expected) <= 1e-6 * np.maximum(1.0, np.abs(expected))), np.abs(got - expected).max()
    else:
        assert np.array_equal(got, expected)


SKLEARN = {
    "fraud/1": "StandardScaler + GradientBoostingClassifier",
    "fraud/2": "LogisticRegression",
    "mixed/1": "ColumnTransformer (imputer, scaler, one-hot of strings) + LogisticRegression",
    "house/1": "GradientBoostingRegressor",
    "realistic/1": "ColumnTransformer with missing values + RandomForestClassifier",
    "narrow/1": "float32 signature: StandardScaler + GradientBoostingClassifier",
}


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_sklearn_models_answer_like_the_onnxruntime_bundle_and_the_model(store, built, tmp_path, name):
    import mlflow.pyfunc

    micro, onnx = built(f"models:/{name}", runtime="micro"), built(f"models:/{name}", runtime="onnx")
    assert micro.manifest["micro"]["operators"] and micro.manifest["runtime"]["kind"] == "micro"
    choice = micro.runtime_choice
    assert choice["micro_parity"]["passed"] and choice["micro_parity"]["rows"] >= 2000
    assert "at decision thresholds" in choice["micro_parity"]["source"] or name in ("fraud/2", "mixed/1")  # linear models have no thresholds
    frame = store.frames.get(name.split("/")[0], store.frames["fraud"]).head(400)  # house: the fraud features
    methods = [None, "predict_proba"] if micro.manifest["model"]["task"] == "classifier" else [None]
    requests = [_frame_request(frame, m) for m in methods]
    micro_answers = _answers_agree(micro, onnx, requests, tmp_path)
    original = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}").predict(frame))
    if micro.manifest["model"]["task"] == "classifier":
        assert np.array_equal(np.asarray(micro_answers[0]["predictions"]), original)
    else:
        assert np.allclose(micro_answers[0]["predictions"], original, rtol=1e-5)


@pytest.mark.parametrize("name", ["xgb-classifier", "xgb-booster", "lgbm-classifier", "lgbm-booster", "xgb-pipeline", "lgbm-pipeline"])
def test_boosted_trees_answer_like_the_onnxruntime_bundle_on_2400_rows(store, built, flavor_models, tmp_path, name):
    import mlflow.pyfunc

    micro, onnx = built(f"models:/{name}/1", runtime="micro"), built(f"models:/{name}/1", runtime="onnx")
    assert micro.runtime_choice["micro_parity"]["passed"] and "at decision thresholds" in micro.runtime_choice["micro_parity"]["source"]
    frame = tabular(2400, seed=17)[0]
    classifier = micro.manifest["model"]["task"] == "classifier"
    requests = [_frame_request(frame)] + ([_frame_request(frame, "predict_proba")] if "predict_proba" in micro.manifest["prediction"]["methods"] else [])
    micro_answers = _answers_agree(micro, onnx, requests, tmp_path)
    expected = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(frame))
    got = np.asarray(micro_answers[0]["predictions"])
    if classifier:
        assert np.array_equal(got, expected)
    else:
        assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_the_micro_zip_holds_the_standard_library_handler_and_the_compiled_model_only(built):
    report = built("models:/fraud@champion", runtime="micro")
    with zipfile.ZipFile(report.artifact) as archive:
        names = archive.namelist()
    assert report.zipped_bytes <= 1024 * 1024
    assert {"mpack_handler.py", "model_micro.py", "mpack.json"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("numpy", "onnxruntime", "aws_lambda_powertools")]
    assert "model.onnx" not in names
    assert any(n.startswith("__pycache__/model_micro.") for n in names)  # no compile at cold start
    assert report.verification["ran"] and report.manifest["runtime"] == {"python": report.manifest["runtime"]["python"], "arch": report.manifest["runtime"]["arch"], "kind": "micro"}


def test_auto_chooses_micro_and_shows_both_runtimes_measured(built):
    report = built("models:/fraud@champion")  # --runtime auto, the default
    choice = report.runtime_choice
    assert choice["runtime"] == "micro" and report.manifest.get("micro")
    for runtime in ("micro", "onnx"):
        figures = choice["measured"][runtime]
        assert figures["cold_start_ms"] > 0 and figures["warm_1_row_us"] > 0 and figures["warm_1000_rows_us"] > figures["warm_1_row_us"]
    assert choice["measured"]["micro"]["warm_1_row_us"] <= choice["warm_bound_ms"] * 1000


@pytest.fixture(scope="module")
def svm_model(store) -> str:
    """A support-vector classifier: skl2onnx writes it as ai.onnx.ml SVMClassifier."""
    import mlflow
    from sklearn.svm import SVC

    frame = store.frames["fraud"]
    labels = store.estimators["fraud"].predict(frame)
    mlflow.set_tracking_uri(store.uri)
    with mlflow.start_run():
        mlflow.sklearn.log_model(SVC().fit(frame, labels), name="model", input_example=frame.head(3), registered_model_name="svm", serialization_format="cloudpickle")
    return "models:/svm/1"


def test_an_unsupported_operator_is_named_and_auto_falls_back_to_onnxruntime(store, built, svm_model, tmp_path):
    with pytest.raises(MpackError, match=r"the micro runtime cannot evaluate this model: operator ai.onnx.ml:SVMClassifier is not supported"):
        built(svm_model, runtime="micro")
    report = built(svm_model)
    assert report.runtime_choice["runtime"] == "onnx" and "SVMClassifier is not supported" in report.runtime_choice["reason"]
    assert report.manifest["model"]["file"] == "model.onnx" and "micro" not in report.manifest
    refused = mpack("build", "--model", svm_model, "--tracking-uri", store.uri, "--runtime", "micro", "--output", str(tmp_path / "c.zip"), "--allow-pickle")
    assert_clean_error(refused, "the micro runtime cannot evaluate this model", "SVMClassifier is not supported", "--runtime onnx")
    assert not (tmp_path / "c.zip").exists()


def test_micro_is_refused_where_it_cannot_serve(store, tmp_path):
    for flags, named in ((["--target", "azure"], "--target azure"), (["--lambda-http", "asgi"], "--lambda-http asgi")):
        refused = mpack("build", "--model", "models:/fraud@champion", "--tracking-uri", store.uri, "--runtime", "micro", *flags, "--output", str(tmp_path / "x.zip"))
        assert_clean_error(refused, named)


def test_logs_and_metrics_keep_powertools_shapes(store, built, tmp_path):
    micro, onnx = built("models:/fraud@champion", runtime="micro"), built("models:/fraud@champion", runtime="onnx")
    bad = {"dataframe_split": {"columns": ["f0"], "data": [[1.0]]}}
    lines = {}
    for name, report in (("micro", micro), ("onnx", onnx)):
        (answer,), _, stdout = run_events(unzip(report.artifact, tmp_path / name), [bad])
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
        records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        log = next(r for r in records if r.get("message") == "request refused")
        emf = next(r for r in records if "_aws" in r)
        lines[name] = (log, emf)
    (micro_log, micro_emf), (onnx_log, onnx_emf) = lines["micro"], lines["onnx"]
    assert POWERTOOLS_KEYS <= set(micro_log) and set(micro_log) == set(onnx_log)
    assert micro_log["level"] == "WARNING" and micro_log["cold_start"] is True and micro_log["status"] == 400
    assert len(micro_log["timestamp"]) == len(onnx_log["timestamp"]) and micro_log["timestamp"].endswith("+0000")
    assert micro_emf["_aws"]["CloudWatchMetrics"] == onnx_emf["_aws"]["CloudWatchMetrics"]
    assert set(micro_emf) == set(onnx_emf) and micro_emf["Errors"] == [1.0]


@pytest.mark.parametrize("event", ["direct", "apigw-rest", "apigw-http", "function-url", "alb", "sqs"])
def test_the_micro_bundle_answers_every_event_source_under_awslambdaric(store, built, tmp_path, event):
    """The local platform runs the bundle under the real AWS runtime interface client."""
    micro = built("models:/fraud@champion", runtime="micro")
    frame = store.frames["fraud"].iloc[:3]
    expected = store.estimators["fraud"].predict(frame).tolist()
    data = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}})
    flags = [] if event == "direct" else ["--event", event]
    result = mpack("invoke", str(micro.artifact), *flags, "--data", data, "--json", "--cache-dir", str(tmp_path / "cache"), timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    if event == "direct":
        assert answer["predictions"] == expected
        assert "Init Duration" in result.stderr
    elif event == "sqs":
        assert answer == {"batchItemFailures": []}
    else:
        assert answer["statusCode"] == 200 and json.loads(answer["body"])["predictions"] == expected


def test_the_same_inputs_build_a_byte_identical_micro_zip(built):
    first = built("models:/fraud@champion", runtime="micro")
    again = built("models:/fraud@champion", runtime="micro", tolerance=1e-5, verify=True)  # a separate build
    assert again.artifact != first.artifact and again.artifact.read_bytes() == first.artifact.read_bytes()
