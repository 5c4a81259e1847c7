"""The gpu target on a machine without a GPU (CI never has one): what the server does when CUDA
cannot be used — readiness fails with the reason, naming the missing part, rather than serving from
the CPU — and the image's recipe (layers, labels, defaults). The server is the gpu image's own app
(`mpack.handlers.container_app`) called in process over ASGI, on the model folder a `--target gpu`
build's stages make (its manifest says kind gpu), with this machine's real (CPU) onnxruntime: its session really falls back to the CPU. A real
gpu image needs onnxruntime-gpu and its CUDA wheels (gigabytes): not built here (see the README)."""

from __future__ import annotations

import json

import pytest
from mpack.handlers.gpu_session import CUDA_LIBRARIES, cuda_problem
from mpack.packager.pipeline import BuildOptions
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.asgi import asgi_request as _asgi
from tests.helpers.asgi import bundle_app
from tests.helpers.staged_bundles import gpu_state, lay_out


@pytest.fixture(scope="module")
def gpu_bundle(store, runtime_cache, tmp_path_factory):
    """The model folder `--target gpu` puts in its image (kind gpu, its CUDA major, require_gpu), from
    the build's own stages; only the CUDA wheels' download is stood in for (tests/helpers/staged_bundles.py)."""
    options = BuildOptions(model="models:/fraud@champion", target="gpu", runtime="onnx", tracking_uri=store.uri, cache_dir=runtime_cache, env_manager="local", allow_pickle=True)
    with gpu_state(options) as (state, _):
        assert state.manifest["runtime"]["kind"] == "gpu" and state.manifest["build"]["require_gpu"] is True
        return lay_out(state, tmp_path_factory.mktemp("gpu") / "model")


def test_without_cuda_the_gpu_server_is_live_but_not_ready_and_says_why(gpu_bundle, store, capfd):
    app = bundle_app(gpu_bundle)
    assert "NOT READY" in capfd.readouterr().err
    assert _asgi(app, "GET", "/v2/health/live", {}, b"")[0] == 200
    for path in ("/v2/health/ready", "/ping", "/health", "/v2/models/fraud/ready"):
        status, _, body = _asgi(app, "GET", path, {}, b"")
        assert status == 503, path
        message = json.loads(body).get("error") or json.loads(body)["message"]
        assert "CPUExecutionProvider, not CUDA" in message and "onnxruntime-gpu" in message, message
    frame = store.frames["fraud"].iloc[:2]
    status, _, body = _asgi(
        app, "POST", "/invocations", {"content-type": "application/json"}, json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}).encode()
    )
    assert status == 503 and json.loads(body)["error_code"] == "SERVICE_UNAVAILABLE"  # never a silent CPU answer
    status, _, text = _asgi(app, "GET", "/metrics", {}, b"")
    families = {family.name: family for family in text_string_to_metric_families(text.decode())}
    assert families["mpack_execution_provider_info"].samples[0].labels == {"provider": "CPUExecutionProvider"}


def test_require_gpu_off_serves_from_the_cpu_and_shows_the_provider(gpu_bundle, store, capfd):
    app = bundle_app(gpu_bundle, MPACK_REQUIRE_GPU="0")
    assert "WARNING - serving from CPUExecutionProvider" in capfd.readouterr().err
    assert _asgi(app, "GET", "/v2/health/ready", {}, b"")[0] == 200
    status, _, body = _asgi(app, "GET", "/v2/models/fraud", {}, b"")
    assert status == 200 and json.loads(body)["parameters"] == {"execution_provider": "CPUExecutionProvider"}
    frame = store.frames["fraud"].iloc[:4]
    status, _, body = _asgi(
        app, "POST", "/invocations", {"content-type": "application/json"}, json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}).encode()
    )
    assert status == 200 and json.loads(body)["predictions"] == store.estimators["fraud"].predict(frame).tolist()


def test_the_diagnosis_names_the_missing_cuda_part():
    """Which libraries load is simulated here (no CUDA libraries or driver exist on this machine to
    remove one at a time); the onnxruntime check uses this machine's real onnxruntime."""
    import onnxruntime

    assert "no CUDA execution provider" in cuda_problem(onnxruntime.get_available_providers(), "13")
    gpu_build = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    present = set(CUDA_LIBRARIES["13"]) - {"libcublasLt.so.13", "libcudnn.so.9"}
    problem = cuda_problem(gpu_build, "13", loadable=present.__contains__)
    assert "CUDA 13 libraries cannot be loaded: libcublasLt.so.13, libcudnn.so.9" in problem
    assert "no NVIDIA driver: libcuda.so.1" in cuda_problem(gpu_build, "13", loadable=set(CUDA_LIBRARIES["13"]).__contains__)
    assert "failed to start" in cuda_problem(gpu_build, "12", loadable=lambda name: True)
