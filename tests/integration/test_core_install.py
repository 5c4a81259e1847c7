"""The core install alone (`pip install mpack-serverless`, no extra) builds, runs and deploys a
registered scikit-learn model (issue 23).

A fresh virtual environment in tmp gets this checkout, not editable, without extras (uv installs it:
seconds instead of pip's minute; the dependency set is the same). Its own `mpack` then builds a model
trained and registered here in a sqlite MLflow store, with the default environment manager (the model
is loaded and converted in its own uv environment, not in the core's), answers the bundle's input
example under `mpack invoke`, and deploys it to moto's server with `--smoke-test local`. Commands that
need an extra the core lacks (Azure, `--env-manager local`) must end in a clean error naming the extra
and its pip line. Under CI=true a missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mpack.packager.cli.app import COMMANDS

from examples.train_demo import train_and_register
from tests.helpers.cli import assert_clean_error
from tests.helpers.moto import CREDENTIALS, moto_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CORE_GUARD_MB = 340  # uv's install (no bytecode) holds 310 MB today; bench/install.py measures pip's (with bytecode) against the floor
NOT_IN_CORE = ("sklearn", "pandas", "skl2onnx", "onnxmltools", "skops", "scipy", "flask", "azure.mgmt.web", "azure.storage.blob", "azure.identity")
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # the bundle is verified here, without Docker


def _needs(found, message: str):
    if not found:
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> Path:
    """A fresh venv holding mpack's core install; returns its bin/ folder."""
    from uv import find_uv_bin

    uv = _needs(shutil.which(find_uv_bin()), "uv is not installed (pip install uv)")
    venv = tmp_path_factory.mktemp("core") / "venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([uv, "venv", "--quiet", "--python", base, str(venv)], check=True)
    installed = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(ROOT)], capture_output=True, text=True, timeout=900, check=False)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv / "bin"


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> str:
    """A scikit-learn pipeline trained and registered here: models:/core-fraud@champion."""
    return train_and_register(tmp_path_factory.mktemp("mlflow"), "core-fraud", trees=20)


@pytest.fixture(scope="module")
def env(runtime_cache) -> dict:
    """The model's environment and the runtime wheels are kept between runs, as the other build tests do."""
    return {**os.environ, "MPACK_CACHE_DIR": str(runtime_cache), "NO_COLOR": "1"}


def run(core: Path, *args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(core / "mpack"), *args], capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def test_the_core_is_light_and_holds_no_extra(core):
    site = next((core.parent / "lib").glob("python3.*/site-packages"))
    size_mb = int(subprocess.run(["du", "-sk", str(site)], capture_output=True, text=True, check=True).stdout.split()[0]) / 1024
    assert size_mb <= CORE_GUARD_MB, f"the core install holds {size_mb:.0f} MB"
    probe = "import importlib, sys\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m); print(m)\n    except ImportError: pass"
    present = subprocess.run([str(core / "python"), "-c", probe, *NOT_IN_CORE], capture_output=True, text=True, check=True).stdout.strip()
    assert present == "", f"the core install brings {present.split()}"


def test_every_command_shows_its_help(core, env):
    for command in ([], *([name] for name in sorted(COMMANDS))):
        shown = run(core, *command, "--help", env=env, timeout=120)
        assert shown.returncode == 0 and "Usage" in shown.stdout, f"mpack {' '.join(command)} --help: {shown.stderr[-2000:]}"


def test_the_core_builds_invokes_and_deploys_a_registered_sklearn_model(core, registered, env, tmp_path):
    bundle = tmp_path / "core-fraud.zip"
    built = run(core, "build", "--model", "models:/core-fraud@champion", "--tracking-uri", registered, "--target", "lambda", "--python", HOST_PYTHON, "--output", str(bundle), env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "model environment" in built.stderr  # the default: converted in the model's own environment

    invoked = run(core, "invoke", str(bundle), env=env, timeout=120)
    assert invoked.returncode == 0, invoked.stderr[-2000:]
    assert len(json.loads(invoked.stdout)["predictions"]) == 3 and "REPORT RequestId" in invoked.stderr

    _needs((Path(sys.executable).parent / "moto_server").is_file(), "moto_server is not installed (pip install -e '.[test]')")
    with moto_server() as endpoint:
        aws = {**env, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
        deployed = run(core, "deploy", str(bundle), "--function", "core-fraud", "--smoke-test", "local", "--yes", "--json", env=aws, timeout=300)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    report = json.loads(deployed.stdout)
    assert report["changed"] and report["alias_version"] == "1"
    assert any("predictions for the input example (local platform)" in check for check in report["checks"])


def test_a_command_that_needs_a_missing_extra_says_which(core, registered, env):
    rollback = run(core, "rollback", "--platform", "azure", "--app", "fraud", "--resource-group", "rg", "--subscription", "0", "--yes", env=env, timeout=120)
    assert_clean_error(rollback, "mpack's [azure] extra", "pip install 'mpack-serverless[azure]'")

    local = run(core, "build", "--model", "models:/core-fraud@champion", "--tracking-uri", registered, "--env-manager", "local", "--python", HOST_PYTHON, env=env)
    assert_clean_error(local, "--env-manager local", "mpack's [local] extra", "pip install 'mpack-serverless[local]'")
