"""A Lambda zip for another Python than this machine's (3.13 and the default 3.14 here, which runs
3.11): built, precompiled, measured and verified in a container of that Python and run there by
`mpack invoke` under the real runtime interface client (installed from its wheels for that Python).
The containers' interpreters are Debian trixie's Python 3.13 and forky's 3.14, built from Debian
packages (debootstrap + docker import; no registry), kept on the machine between runs."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from tests.helpers.cli import assert_clean_error, mpack

pytestmark = pytest.mark.slow
REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 1024 MB\tMax Memory Used: (?P<used>\d+) MB\tInit Duration: [\d.]+ ms$", re.M)


@pytest.fixture(scope="module")
def python313_image(docker_client) -> str:
    from mpack.infra.local.python_container import default_image
    from mpack.packager.image.base_image import build_base_image

    return build_base_image(default_image("3.13"), suite="trixie").tag


@pytest.mark.parametrize("runtime", ["micro", "onnx"])
def test_a_313_bundle_is_verified_and_invoked_in_its_container(store, built, python313_image, tmp_path, runtime):
    report = built("models:/fraud@champion", runtime=runtime, python="3.13")
    assert report.manifest["runtime"]["python"] == "3.13"
    assert report.verification["ran"] and "Python 3.13 container" in report.verification["reason"]
    if runtime == "onnx":
        with zipfile.ZipFile(report.artifact) as archive:
            assert any(n.startswith("onnxruntime/capi/onnxruntime_pybind11_state.cpython-313") for n in archive.namelist())
    frame = store.frames["fraud"].iloc[:5]
    data = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}})
    result = mpack("invoke", str(report.artifact), "--data", data, "--json", "--cache-dir", str(tmp_path / "cache"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"] == store.estimators["fraud"].predict(frame).tolist()
    assert REPORT.search(result.stderr), result.stderr


def test_without_the_image_the_error_names_what_to_build(built, docker_client, tmp_path):
    bundle = built("models:/fraud@champion", runtime="micro", python="3.13").artifact
    result = mpack("invoke", str(bundle), "--base-image", "mpack-test/no-such-python:3.13", "--cache-dir", str(tmp_path / "cache"))
    assert_clean_error(result, "built for Python 3.13 on x86_64", "mpack-test/no-such-python:3.13", "mpack base-image", "--python 3.11")


def test_a_312_bundle_has_no_debian_image_and_says_which_to_use(built, store, tmp_path):
    result = mpack("build", "--model", "models:/fraud@champion", "--tracking-uri", store.uri, "--target", "lambda", "--python", "3.12", "--allow-pickle", "--output", str(tmp_path / "f.zip"))
    assert_clean_error(result, "Python 3.12 on x86_64 is compiled, measured and verified in a container", "no Debian release ships Python 3.12", "--base-image", "--python 3.11", "--no-verify")
    assert not (tmp_path / "f.zip").exists()
    bundle = built("models:/fraud@champion", runtime="micro", python="3.12", verify=False)
    assert bundle.verification["ran"] is False and any("uncompiled" in warning for warning in bundle.warnings)
    result = mpack("invoke", str(bundle.artifact), "--cache-dir", str(tmp_path / "cache"))
    assert_clean_error(result, "no Debian release ships Python 3.12", "--base-image", "public.ecr.aws/lambda/python:3.12")


def test_the_default_is_the_newest_lambda_python_built_measured_and_verified_in_its_container(store, docker_client, tmp_path, monkeypatch):
    """No --python and no $MPACK_PYTHON: what a user's `mpack build` makes (its Debian forky image
    is built by the build itself on first use)."""
    monkeypatch.delenv("MPACK_PYTHON")
    output = tmp_path / "fraud.zip"
    result = mpack("build", "--model", "models:/fraud@champion", "--tracking-uri", store.uri, "--target", "lambda", "--allow-pickle", "--output", str(output), "--json", timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runtime"]["python"] == "3.14"
    assert report["verification"]["ran"] and "Python 3.14 container" in report["verification"]["reason"]
    measured = report["runtime_choice"]["measured"]  # both runtimes timed in fresh 3.14 processes
    assert measured["micro"]["cold_start_ms"] > 0 and measured["onnx"]["cold_start_ms"] > measured["micro"]["cold_start_ms"]
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    assert any(n.endswith(".cpython-314.pyc") for n in names), names  # precompiled by Python 3.14
    frame = store.frames["fraud"].iloc[:5]
    data = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}})
    result = mpack("invoke", str(output), "--data", data, "--json", "--cache-dir", str(tmp_path / "cache"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"] == store.estimators["fraud"].predict(frame).tolist()
    assert REPORT.search(result.stderr), result.stderr
