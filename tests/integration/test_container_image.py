"""`--target container` on a real Docker engine: images built for registered models on a base image
made from Debian packages, run, and spoken to by real HTTP clients on all three protocols (MLflow
scoring, Open Inference, SageMaker), with metrics, layer reuse across model versions and a graceful
SIGTERM."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest
from mpack.infra.errors import MpackError
from mpack.packager.pipeline import BuildOptions, build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fraud_image(built, base_image):
    return built("models:/fraud@champion", target="container", base_image=base_image, tag="mpack-test/fraud:1-container")


class Running:
    """A container of the image with its port published on 127.0.0.1."""

    def __init__(self, client, tag: str, port: int = 8080, **options) -> None:
        self.container = client.containers.run(tag, detach=True, ports={f"{port}/tcp": ("127.0.0.1", None)}, **options)
        deadline = time.monotonic() + 30
        while True:
            self.container.reload()
            bindings = (self.container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
            if bindings:
                break
            assert time.monotonic() < deadline, self.container.logs().decode()
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{bindings[0]['HostPort']}"
        while self.request("GET", "/ping")[0] != 200:
            assert time.monotonic() < deadline, self.container.logs().decode()
            time.sleep(0.05)

    def request(self, method: str, path: str, body=None, content_type: str = "application/json"):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, ConnectionError):
            return 0, b""

    def close(self) -> None:
        self.container.remove(force=True)


@pytest.fixture(scope="module")
def server(docker_client, fraud_image):
    running = Running(docker_client, fraud_image.artifact)
    yield running
    running.close()


def _split(frame):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def test_image_is_small_non_root_labelled_and_reported(docker_client, fraud_image, base_image):
    image = docker_client.images.get(fraud_image.artifact)
    config = image.attrs["Config"]
    assert config["User"] == "65532:65532" and config["Entrypoint"] == ["python3", "-S", "-m", "mpack.handlers.container_main"] and config["Cmd"] == ["serve"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "fraud" and labels["org.opencontainers.image.version"] == "1"
    assert labels["io.mpack.model.sha256"] == fraud_image.manifest["model"]["sha256"] and labels["io.mpack.model.source"] == "models:/fraud@champion"
    assert fraud_image.image["size_bytes"] - fraud_image.image["base_size_bytes"] < 200 * 2**20
    components = fraud_image.image["components"]  # the size by component, as the build reports it
    assert list(components) == ["base", "deps", "model", "app"] and components["base"] == fraud_image.image["base_size_bytes"] and components["model"] > 0
    assert fraud_image.verification["ran"] and fraud_image.verification["reason"] == "ok"
    report = fraud_image.to_dict()
    assert report["artifact"]["image"]["tag"] == "mpack-test/fraud:1-container" and len(report["artifact"]["image"]["layers"]) == 4


def test_mlflow_scoring_protocol(store, server):
    frame = store.frames["fraud"].iloc[:5]
    expected = store.estimators["fraud"].predict(frame).tolist()
    status, body = server.request("POST", "/invocations", _split(frame))
    assert status == 200 and json.loads(body)["predictions"] == expected
    status, body = server.request("POST", "/invocations", frame.to_csv(index=False).encode(), "text/csv")
    assert status == 200 and json.loads(body)["predictions"] == expected
    proba = dict(_split(frame), params={"predict_method": "predict_proba"})
    status, body = server.request("POST", "/invocations", proba)
    assert status == 200 and len(json.loads(body)["predictions"][0]) == 2
    assert server.request("GET", "/health")[0] == 200
    status, body = server.request("GET", "/version")  # plain text, as mlflow models serve answers it
    assert status == 200 and body.decode().strip() and not body.startswith(b"{")
    status, body = server.request("GET", "/metadata")
    assert json.loads(body)["model"]["name"] == "fraud"
    status, body = server.request("POST", "/invocations", {"dataframe_split": {"columns": ["f0"], "data": [[1]]}})
    assert status == 400 and "missing column" in json.loads(body)["message"]
    assert server.request("POST", "/invocations", b"<xml/>", "application/xml")[0] == 415
    assert server.request("GET", "/nowhere")[0] == 404


def test_open_inference_protocol(store, server):
    frame = store.frames["fraud"].iloc[:3]
    expected = store.estimators["fraud"].predict(frame).tolist()
    assert json.loads(server.request("GET", "/v2/health/live")[1]) == {"live": True}
    assert json.loads(server.request("GET", "/v2/health/ready")[1]) == {"ready": True}
    assert json.loads(server.request("GET", "/v2/models/fraud/ready")[1]) == {"name": "fraud", "ready": True}
    metadata = json.loads(server.request("GET", "/v2/models/fraud")[1])
    assert [i["name"] for i in metadata["inputs"]] == list(frame.columns) and metadata["inputs"][0] == {"name": "f0", "datatype": "FP64", "shape": [-1]}
    assert {o["name"] for o in metadata["outputs"]} >= {"label", "probabilities"}
    per_column = {"id": "r1", "inputs": [{"name": c, "shape": [3], "datatype": "FP64", "data": frame[c].tolist()} for c in frame.columns]}
    status, body = server.request("POST", "/v2/models/fraud/infer", per_column)
    answer = json.loads(body)
    assert status == 200 and answer["model_name"] == "fraud" and answer["id"] == "r1"
    assert answer["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [3], "data": expected}]
    matrix = {"inputs": [{"name": "input", "shape": [3, len(frame.columns)], "datatype": "FP64", "data": frame.to_numpy().reshape(-1).tolist()}], "parameters": {"predict_method": "predict_proba"}}
    status, body = server.request("POST", "/v2/models/fraud/versions/1/infer", matrix)
    probabilities = json.loads(body)["outputs"][0]
    assert status == 200 and probabilities["datatype"] == "FP32" and probabilities["shape"] == [3, 2]
    status, body = server.request("POST", "/v2/models/other/infer", per_column)
    assert status == 404 and "unknown model 'other'" in json.loads(body)["error"]
    bad_shape = {"inputs": [{"name": "f0", "shape": [2], "datatype": "FP64", "data": [1.0]}]}
    status, body = server.request("POST", "/v2/models/fraud/infer", bad_shape)
    assert status == 400 and "needs 2 values" in json.loads(body)["error"]


def test_mlflows_own_scoring_client(store, server):
    """MLflow's ScoringServerClient, as used against `mlflow models serve`: pandas in, predictions out,
    params, /version as text; an ID column the model does not take is ignored as MLflow ignores it."""
    import numpy as np
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = server.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    frame = store.frames["fraud"].iloc[:40]
    expected = store.estimators["fraud"].predict(frame)
    labels = client.invoke(frame).get_predictions()
    assert labels.iloc[:, 0].tolist() == expected.tolist()
    with_id = client.invoke(frame.assign(transaction_id=[f"t{i}" for i in range(len(frame))])).get_predictions()
    assert with_id.iloc[:, 0].tolist() == expected.tolist()
    proba = client.invoke(frame, params={"predict_method": "predict_proba"}).get_predictions()
    assert np.abs(proba.to_numpy() - store.estimators["fraud"].predict_proba(frame)).max() < 1e-5
    assert client.get_version().strip()


def test_tritonclient_with_its_defaults_binary_tensors_both_ways(store, server):
    """KServe V2 through NVIDIA's own client: binary inputs, binary outputs (its defaults)."""
    import numpy as np
    import tritonclient.http as triton

    frame = store.frames["fraud"].iloc[:25]
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready("fraud")
    inputs = []
    for column in frame.columns:
        tensor = triton.InferInput(column, [len(frame)], "FP64")
        tensor.set_data_from_numpy(frame[column].to_numpy())  # binary_data=True by default
        inputs.append(tensor)
    labels = client.infer("fraud", inputs)  # no outputs named: all of them, as binary data
    assert labels.as_numpy("label").tolist() == store.estimators["fraud"].predict(frame).tolist()
    proba = client.infer("fraud", inputs, outputs=[triton.InferRequestedOutput("probabilities")], parameters={"predict_method": "predict_proba"})
    assert np.abs(proba.as_numpy("probabilities") - store.estimators["fraud"].predict_proba(frame)).max() < 1e-5
    as_json = client.infer("fraud", inputs, outputs=[triton.InferRequestedOutput("label", binary_data=False)])
    assert as_json.get_response()["outputs"][0]["data"] == store.estimators["fraud"].predict(frame).tolist()
    short = b'{"inputs": [{"name": "f0", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}]}'
    request = urllib.request.Request(server.url + "/v2/models/fraud/infer", data=short + b"\x00" * 8, method="POST", headers={"Inference-Header-Content-Length": str(len(short))})
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a truncated binary tensor was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 400 and "binary_data_size 16" in json.loads(error.read())["error"]


def test_prometheus_metrics_count_requests_errors_and_latency(server):
    server.request("POST", "/invocations", b"{broken")
    status, body = server.request("GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert re.search(r'mpack_requests_total\{endpoint="invocations",status="200"\} [1-9]', text)
    assert re.search(r'mpack_request_errors_total\{endpoint="invocations"\} [1-9]', text)
    assert 'mpack_request_duration_seconds_bucket{endpoint="invocations",le="0.001"}' in text


def test_sagemaker_contract_and_port_variable(docker_client, fraud_image):
    custom = Running(docker_client, fraud_image.artifact, port=9000, environment={"PORT": "9000"})
    try:
        assert custom.request("GET", "/ping")[0] == 200
    finally:
        custom.close()
    sagemaker = Running(docker_client, fraud_image.artifact, command=["serve"])  # docker run IMAGE serve
    try:
        assert sagemaker.request("GET", "/ping")[0] == 200
        assert sagemaker.container.attrs["Path"] == "python3"  # no tini: the server itself gets the signals
    finally:
        sagemaker.close()


def test_sigterm_lets_the_request_in_flight_finish(store, docker_client, fraud_image):
    running = Running(docker_client, fraud_image.artifact)
    frame = store.frames["fraud"]
    big = _split(frame.sample(30_000, replace=True, random_state=0))  # about 5 MB: long enough to be in flight
    answers = []
    sender = threading.Thread(target=lambda: answers.append(running.request("POST", "/invocations", big)))
    try:
        sender.start()
        time.sleep(0.3)
        running.container.kill(signal="SIGTERM")
        sender.join(timeout=60)
        status = running.container.wait(timeout=40)
    finally:
        running.close()
    assert answers and answers[0][0] == 200 and len(json.loads(answers[0][1])["predictions"]) == 30_000
    assert status["StatusCode"] == 0


def test_new_model_version_reuses_the_dependency_layer(store, docker_client, fraud_image, base_image, runtime_cache):
    started = time.monotonic()
    second = build(BuildOptions(model="models:/fraud/2", target="container", tracking_uri=store.uri, cache_dir=runtime_cache, base_image=base_image, tag="mpack-test/fraud:2-container"))
    elapsed = time.monotonic() - started
    first_layers, second_layers = fraud_image.image["layers"], second.image["layers"]
    assert first_layers[:2] == second_layers[:2]  # base and runtime libraries: byte-identical
    assert first_layers[2] != second_layers[2]  # the model layer changed (and the code layer after it was rebuilt)
    assert second.verification["ran"] and elapsed < 120


def test_missing_base_image_is_refused_without_pulling(store, docker_client, runtime_cache):
    with pytest.raises(MpackError, match="not on this machine \\(mpack never pulls\\)") as caught:
        build(BuildOptions(model="models:/fraud@champion", target="container", tracking_uri=store.uri, cache_dir=runtime_cache, base_image="mpack-test/absent:1"))
    assert "mpack base-image" in caught.value.hint


def test_push_to_a_registry_and_pull_back_by_digest(store, docker_client, base_image, runtime_cache, registry):
    tag = f"{registry}/mpack-test/fraud:1"
    report = build(BuildOptions(model="models:/fraud@champion", target="container", tracking_uri=store.uri, cache_dir=runtime_cache, base_image=base_image, tag=tag, push=True))
    pushed = report.image["pushed"]
    assert pushed.startswith(f"{registry}/mpack-test/fraud@sha256:")
    docker_client.images.remove(tag, force=True)
    pulled = docker_client.images.pull(pushed)
    assert pulled.id == report.image["id"]
    with pytest.raises(MpackError, match="needs a tag that names a registry"):
        build(BuildOptions(model="models:/fraud@champion", target="container", tracking_uri=store.uri, cache_dir=runtime_cache, base_image=base_image, tag="plain:1", push=True, verify=False))


def test_a_model_onnx_cannot_express_ships_natively_on_image_targets(store, docker_client, base_image, runtime_cache):
    """NearestCentroid has no skl2onnx converter: the image target falls back to the native runtime
    (scikit-learn and the model's own pinned requirements, without MLflow) with a notice."""
    from mpack.packager.pipeline import SilentProgress

    class Recorder(SilentProgress):
        warnings: list = []

        def warn(self, text: str) -> None:
            self.warnings.append(text)

    progress = Recorder()
    report = build(
        BuildOptions(model="models:/centroid/1", target="container", tracking_uri=store.uri, cache_dir=runtime_cache, base_image=base_image, tag="mpack-test/centroid:1", allow_pickle=True), progress
    )
    assert any("shipping the model with scikit-learn instead (--runtime native)" in w for w in progress.warnings)
    assert report.manifest["runtime"]["kind"] == "native" and report.manifest["model"]["file"] == "model.pkl"
    assert not any(p.lower().startswith("mlflow") for p in report.manifest["runtime"]["packages"])
    assert report.parity["passed"] and report.verification["ran"]
    frame = store.frames["fraud"].iloc[:6]
    expected = store.estimators["centroid"].predict(frame).tolist()
    running = Running(docker_client, report.artifact)
    try:
        status, body = running.request("POST", "/invocations", _split(frame))
        assert status == 200 and json.loads(body)["predictions"] == expected
        status, body = running.request("POST", "/invocations", {"dataframe_split": {"columns": ["f0"], "data": [[1]]}})
        assert status == 400 and "missing column" in json.loads(body)["message"]  # same validation as ONNX bundles
        per_column = {"inputs": [{"name": c, "shape": [6], "datatype": "FP64", "data": frame[c].tolist()} for c in frame.columns]}
        status, body = running.request("POST", "/v2/models/centroid/infer", per_column)
        assert status == 200 and json.loads(body)["outputs"][0]["data"] == expected
    finally:
        running.close()
    # a native zip ships the model's own pins, which today have no wheel for Lambda's Python 3.11 glibc
    with pytest.raises(MpackError, match="no wheel for Python 3.11") as refused:
        build(BuildOptions(model="models:/centroid/1", target="lambda", tracking_uri=store.uri, cache_dir=runtime_cache, runtime="native", allow_pickle=True))
    assert "older pins" in refused.value.hint and "--target lambda-image" in refused.value.hint
    with pytest.raises(MpackError, match=r"skl2onnx [0-9.]+ cannot convert"):
        build(BuildOptions(model="models:/centroid/1", target="container", tracking_uri=store.uri, cache_dir=runtime_cache, base_image=base_image, runtime="onnx", allow_pickle=True))
