"""`--target lambda-image` on a real Docker engine: the image's own runtime interface client
(awslambdaric, its entry point on a non-AWS base) talks to mpack's Runtime API from a container,
through `mpack invoke` and `mpack serve` (with boto3), under Lambda's memory limit and CPU share."""

from __future__ import annotations

import base64
import json
import re

import boto3
import pytest
from botocore.config import Config

from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.serve_process import ServeProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lambda_image(built, base_image):
    return built("models:/fraud@champion", target="lambda-image", base_image=base_image, tag="mpack-test/fraud:1-lambda-image")


def _split(frame):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def test_image_layout_and_build_verification(docker_client, lambda_image):
    config = docker_client.images.get(lambda_image.artifact).attrs["Config"]
    assert config["Entrypoint"] == ["python3", "-m", "awslambdaric"] and config["Cmd"] == ["mpack_handler.handler"]
    assert config["WorkingDir"] == "/var/task" and config["User"] == "65532:65532"
    assert lambda_image.verification["ran"] and lambda_image.verification["init_seconds"] > 0  # invoked on the local platform
    assert len(lambda_image.image["layers"]) == 5  # base, runtime client, libraries, model, handler


def test_mpack_invoke_runs_the_image_in_a_container(store, lambda_image, tmp_path):
    frame = store.frames["fraud"].iloc[:7]
    result = mpack("invoke", lambda_image.artifact, "--data", json.dumps(_split(frame)), "--json", "--memory", "512", "--cache-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"] == store.estimators["fraud"].predict(frame).tolist()
    report = re.search(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 512 MB\tMax Memory Used: (\d+) MB\tInit Duration: ([\d.]+) ms", result.stderr)
    assert report and 20 <= int(report.group(1)) < 512, result.stderr


def test_mpack_serve_runs_the_image_for_boto3(store, lambda_image, tmp_path):
    frame = store.frames["fraud"].iloc[:4]
    with ServeProcess(lambda_image.artifact, "--max-concurrency", "2", cache=tmp_path) as server:
        client = boto3.client(
            "lambda", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t", config=Config(retries={"max_attempts": 0}, read_timeout=120)
        )
        answer = client.invoke(FunctionName=server.function, Payload=json.dumps(_split(frame)), LogType="Tail")
        assert json.loads(answer["Payload"].read())["predictions"] == store.estimators["fraud"].predict(frame).tolist()
        assert "Init Duration" in base64.b64decode(answer["LogResult"]).decode()


def test_an_unknown_image_or_a_non_lambda_image_is_refused(built, base_image, tmp_path):
    assert_clean_error(mpack("invoke", "mpack-test/nothing:here", "--cache-dir", str(tmp_path)), "neither a bundle file nor an image on this machine")
    http_image = built("models:/fraud@champion", target="container", base_image=base_image, tag="mpack-test/fraud:1-container")
    assert_clean_error(mpack("invoke", http_image.artifact, "--cache-dir", str(tmp_path)), "is not a Lambda image built by mpack")
