"""PyTorch models registered in a real MLflow store (torch.export and TorchScript), converted to ONNX
in their own environment with PyTorch's CPU build, answering through the Lambda bundle what MLflow's
own loader answers, in every tensor shape MLflow's protocol takes; and through a container image,
to tritonclient's KServe V2 tensors with their shapes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.bundle_runner import run_events, unzip
from tests.helpers.torch_models import WIDTH, log_torch_models, rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def torch_models(store):
    return log_torch_models(store)


@pytest.mark.parametrize("name", ["torch-export", "torch-script"])
def test_bundle_answers_like_mlflows_own_loader(store, built, torch_models, tmp_path, name):
    import mlflow.pyfunc

    report = built(f"models:/{name}/1")
    assert report.manifest["model"]["flavor"] == "pytorch" and report.manifest["signature"]["layout"] == "tensors"
    assert report.parity["passed"] and report.parity["rows"] >= 2000
    assert report.manifest["converter"]["format"] == {"torch-export": "torch.export", "torch-script": "torchscript"}[name]
    x = rows(2400, seed=7)
    expected = mlflow.pyfunc.load_model(f"models:/{name}/1").predict(x)
    answers, modules, _ = run_events(
        unzip(report.artifact, tmp_path),
        [
            {"inputs": x.tolist()},
            {"instances": x[:5].tolist()},
            {"inputs": {"input": x[:3].tolist()}},
            {"inputs": x[:1].tolist()},
        ],
    )
    assert not any(m.split(".")[0] == "torch" for m in modules)
    assert np.abs(np.asarray(answers[0]["predictions"]) - expected).max() < 1e-5
    assert np.abs(np.asarray(answers[1]["predictions"]) - expected[:5]).max() < 1e-5
    assert np.abs(np.asarray(answers[2]["predictions"]) - expected[:3]).max() < 1e-5
    assert np.asarray(answers[3]["predictions"]).shape == (1, 3)


def test_wrong_tensor_shapes_are_answered_400(store, built, torch_models, tmp_path):
    report = built("models:/torch-export/1")
    answers, _, _ = run_events(
        unzip(report.artifact, tmp_path),
        [
            {"inputs": [[1.0, 2.0]]},
            {"inputs": {"x": [[0.0] * WIDTH]}},
            {"dataframe_split": {"columns": ["a"], "data": [[1]]}},
        ],
    )
    # a table is read as the one tensor's rows, as MLflow reads it: one column is not 12
    assert [a.get("error_code") for a in answers] == ["INVALID_PARAMETER_VALUE"] * 3, answers
    assert "shape [N, 12]" in answers[0]["message"] and "shape [N, 12]" in answers[2]["message"]


def test_container_answers_tritonclient_tensors(store, built, torch_models, docker_client, base_image):
    import tritonclient.http as triton

    from tests.integration.test_container_image import Running

    report = built("models:/torch-export/1", target="container", base_image=base_image, tag="mpack-test/torch-export:1-container")
    running = Running(docker_client, report.artifact)
    try:
        client = triton.InferenceServerClient(url=running.url.removeprefix("http://"))
        assert client.is_model_ready("torch-export")
        metadata = client.get_model_metadata("torch-export")
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, WIDTH]}]
        x = rows(64, seed=9)
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        answer = client.infer("torch-export", [tensor]).as_numpy(metadata["outputs"][0]["name"])
        assert answer.shape == (64, 3)
        assert np.abs(answer - torch_models["torch-export"](__import__("torch").from_numpy(x)).detach().numpy()).max() < 1e-5
    finally:
        running.close()
