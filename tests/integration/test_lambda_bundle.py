"""Built Lambda zips, run the way Lambda runs them: a fresh `python -I -S` with only the unzipped
bundle on the path. Predictions are compared with the original scikit-learn models."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from mpack.handlers.manifest import Manifest
from mpack.infra.errors import MpackError
from mpack.infra.local.events import wrap_event

from tests.helpers.bundle_runner import run_events, unzip

pytestmark = pytest.mark.slow
RUNTIME_FORBIDDEN = ("pandas", "sklearn", "mlflow", "scipy", "asyncio", "starlette", "mangum", "boto3")


@pytest.fixture(scope="module")
def fraud_bundle(built, tmp_path_factory):
    report = built("models:/fraud@champion", runtime="onnx")  # the onnxruntime bundle (micro: test_micro_runtime.py)
    return report, unzip(report.artifact, tmp_path_factory.mktemp("fraud"))


def _split(frame):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def test_bundle_answers_like_the_original_model_in_an_isolated_interpreter(store, fraud_bundle):
    report, folder = fraud_bundle
    frame = store.frames["fraud"].iloc[:50]
    labels_request = _split(frame)
    proba_request = dict(_split(frame), params={"predict_method": "predict_proba"})
    (labels, proba), modules, _ = run_events(folder, [labels_request, proba_request])
    assert labels["predictions"] == store.estimators["fraud"].predict(frame).tolist()
    assert np.abs(np.asarray(proba["predictions"]) - store.estimators["fraud"].predict_proba(frame)).max() < 1e-5
    assert not [m for m in modules if m.split(".")[0] in RUNTIME_FORBIDDEN]


def test_zip_layout_manifest_and_size_report(fraud_bundle):
    report, folder = fraud_bundle
    with zipfile.ZipFile(report.artifact) as archive:
        names = set(archive.namelist())
        infos = archive.infolist()
    assert {"mpack_handler.py", "mpack.json", "model.onnx", "mpack/handlers/lambda_function.py"} <= names
    assert "mpack/handlers/__pycache__/lambda_function.cpython-311.pyc" in names  # precompiled
    assert not [n for n in names if n.split("/")[0] in ("boto3", "botocore", "sympy", "pandas", "sklearn")]
    assert not [n for n in names if "/tests/" in n or n.endswith((".pyi", ".h"))]
    assert not [n for n in names if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    manifest = Manifest.from_bytes((folder / "mpack.json").read_bytes())
    assert manifest.schema == 2 and len(manifest.models) == 1
    assert manifest.handler == "mpack_handler.handler" == report.handler
    assert manifest.models[0].name == "fraud" and manifest.models[0].version == "1"
    assert manifest.runtime["python"] == "3.11"
    assert report.zipped_bytes < 27 * 2**20
    assert report.contributors[0]["name"] == "numpy"
    assert report.verification["ran"] is True
    assert report.parity["passed"] and report.parity["rows"] >= 3


def test_every_event_source(store, fraud_bundle):
    _, folder = fraud_bundle
    frame = store.frames["fraud"].iloc[:4]
    request = _split(frame)
    expected = store.estimators["fraud"].predict(frame).tolist()
    bad = {"dataframe_records": [{"f0": 1}]}
    events = [
        wrap_event("apigw-rest", request),
        wrap_event("apigw-http", request),
        wrap_event("function-url", request, base64_body=True),
        wrap_event("alb", request),
        wrap_event("apigw-http", bad),
        wrap_event("alb", request, method="GET", path="/ping"),
        wrap_event("apigw-rest", request, content_type="text/plain"),
        wrap_event("sqs", [request, bad, request]),
    ]
    rest, http, url, alb, http_bad, alb_ping, rest_415, sqs = run_events(folder, events)[0]
    for answer in (rest, http, url, alb):
        assert answer["statusCode"] == 200
        assert json.loads(answer["body"]) == {"predictions": expected}
    assert rest["multiValueHeaders"]["Content-Type"] == ["application/json"] or rest["headers"]["Content-Type"] == "application/json"
    assert alb["statusDescription"] == "200 OK"
    assert http_bad["statusCode"] == 400 and "missing column(s)" in json.loads(http_bad["body"])["message"]
    assert alb_ping["statusCode"] == 200
    assert rest_415["statusCode"] == 415
    assert sqs == {"batchItemFailures": [{"itemIdentifier": events[-1]["Records"][1]["messageId"]}]}


def test_logs_are_json_with_request_id_and_metrics_are_emf(fraud_bundle):
    _, folder = fraud_bundle
    _, _, stdout = run_events(folder, [{"dataframe_records": [{"f0": 1}]}])
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    refused = [line for line in lines if line.get("message") == "request refused"]
    assert refused and refused[0]["function_request_id"] == "00000000-0000-0000-0000-000000000000"
    emf = [line for line in lines if "_aws" in line]
    assert emf, stdout
    assert {"Latency", "Rows", "Errors"} <= set(emf[0])
    assert emf[0]["Errors"] in (1, 1.0, [1.0]) and emf[0]["Rows"] in (0, 0.0, [0.0])
    assert {m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {"Latency", "Rows", "Errors"}


def test_bad_direct_invocations_are_answered_and_the_next_one_works(fraud_bundle):
    _, folder = fraud_bundle
    good = {"instances": [[0.1] * 8]}
    results, _, _ = run_events(folder, ["not a request", {"instances": [[0.1] * 3]}, [1, 2], None, good])
    for answer in results[:4]:
        assert answer["error_code"] and answer["message"]
    assert "predictions" in results[4]


def test_asgi_mode_serves_http_through_mangum_with_the_same_answers(store, built, tmp_path):
    report = built("models:/fraud@champion", lambda_http="asgi")
    folder = unzip(report.artifact, tmp_path)
    frame = store.frames["fraud"].iloc[:3]
    events = [wrap_event("apigw-http", _split(frame)), wrap_event("apigw-rest", {"nope": 1}), _split(frame)]
    (http, rest_bad, direct), modules, _ = run_events(folder, events)
    expected = store.estimators["fraud"].predict(frame).tolist()
    assert http["statusCode"] == 200 and json.loads(http["body"]) == {"predictions": expected}
    assert rest_bad["statusCode"] == 400
    assert direct == {"predictions": expected}
    assert "mangum" in modules and "starlette" in modules


def test_default_mode_never_imports_the_asgi_stack_even_for_http(fraud_bundle):
    _, folder = fraud_bundle
    _, modules, _ = run_events(folder, [wrap_event("apigw-http", {"instances": [[0.1] * 8]})])
    assert not [m for m in modules if m.split(".")[0] in ("asyncio", "starlette", "mangum")]


def test_a_model_file_altered_after_the_build_is_an_init_error(fraud_bundle, tmp_path):
    report, _ = fraud_bundle
    folder = unzip(report.artifact, tmp_path)
    model = folder / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(MpackError, match="corrupt or was altered: sha256"):
        run_events(folder, [{"instances": [[0.1] * 8]}])


def test_the_same_inputs_build_a_byte_identical_zip(built, fraud_bundle):
    first, _ = fraud_bundle
    again = built("models:/fraud@champion", runtime="onnx", tolerance=1e-5, verify=True)  # a separate build of the same model
    assert again.artifact != first.artifact
    assert again.sha256 == first.sha256
    assert again.artifact.read_bytes() == first.artifact.read_bytes()


@pytest.mark.parametrize("uri", ["models:/mixed/1", "models:/house/1", "models:/onnx-model/1"])
def test_other_models_build_and_answer_like_the_original(store, built, tmp_path, uri):
    report = built(uri)
    folder = unzip(report.artifact, tmp_path)
    name = uri.split("/")[1]
    frame = store.frames["mixed" if name == "mixed" else "fraud"].iloc[:25]
    records = json.loads(frame.to_json(orient="records"))
    request = {"inputs": frame.to_numpy().tolist()} if name == "onnx-model" else {"dataframe_records": records}
    (answer,), _, _ = run_events(folder, [request])
    if name == "onnx-model":
        predictions = answer["predictions"]
        assert predictions["label"] == store.estimators["logistic"].predict(frame).tolist()
        assert np.abs(np.asarray(predictions["probabilities"]) - store.estimators["logistic"].predict_proba(frame)).max() < 1e-5
        return
    estimator = store.estimators[name]
    if name == "house":
        expected = estimator.predict(frame)
        assert np.abs(np.asarray(answer["predictions"]) - expected).max() / np.abs(expected).max() < 1e-5
        assert report.manifest["model"]["task"] == "regressor"
    else:
        assert answer["predictions"] == estimator.predict(frame).tolist()
        assert report.manifest["signature"]["layout"] == "columns"
        assert {c["name"]: c["allow_missing"] for c in report.manifest["signature"]["columns"]} == {"age": True, "income": True, "city": True, "plan": True}  # null: an unknown category
