"""Shared fixtures: a real sqlite MLflow store with models trained here, a runtime-wheel cache kept
on the machine between runs, and builds made once per session."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

from tests.helpers import models

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


# PyTorch for the models' build environments: this machine keeps PyTorch's CPU wheels in
# /opt/wheels, which uv is pointed at (no other index is asked, and no CUDA build downloaded).
# Elsewhere mpack asks PyTorch's own CPU index, as a user's build would.
if Path("/opt/wheels").is_dir():
    os.environ.setdefault("UV_FIND_LINKS", "/opt/wheels")

# Lambda zips default to the newest Lambda Python (3.14), compiled and verified in a container of
# it. Most tests import and inspect bundles in this interpreter, so they build for its Python the
# way a CI job pins one; tests/integration/test_other_pythons.py builds the real default.
os.environ["MPACK_PYTHON"] = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="session")
def runtime_cache() -> Path:
    """Runtime wheels are expensive to fetch: keep them on the machine across test runs."""
    path = Path(os.environ.get("MPACK_TEST_CACHE", Path.home() / ".cache" / "mpack-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> models.Store:
    """A real MLflow tracking + registry store (sqlite) holding the test models."""
    return models.populate(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def built(store, runtime_cache, tmp_path_factory):
    """Build each named registry model once per session: built(name, **options) -> BuildReport."""
    from mpack.packager.pipeline import BuildOptions, build

    done = {}
    out = tmp_path_factory.mktemp("dist")

    def get(uri: str, **options):
        key = (uri, tuple(sorted(options.items())))
        if key not in done:
            output = out / f"bundle-{len(done)}.zip"
            # the test store's pickled models are our own: trusted explicitly, as a user would
            done[key] = build(BuildOptions(model=uri, tracking_uri=store.uri, cache_dir=runtime_cache, output=output, allow_pickle=True, **options))
        return done[key]

    return get


TEST_BASE_IMAGE = "mpack-test/python:3.11-bookworm"


@pytest.fixture(scope="session")
def docker_client():
    """The real Docker engine. Under CI=true its absence fails the test; elsewhere it skips."""
    from mpack.infra.docker_engine import connect
    from mpack.infra.errors import MpackError

    try:
        return connect()
    except MpackError as error:
        message = f"{error.message} ({error.hint}); scripts/docker.sh starts one"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """A Debian bookworm Python base image built from Debian packages (no registry), kept on the
    machine between test runs: debootstrap costs about a minute once."""
    from mpack.packager.image.base_image import build_base_image

    return build_base_image(TEST_BASE_IMAGE).tag


@pytest.fixture(scope="session")
def registry(tmp_path_factory, docker_client):
    """Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1."""
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request

    binary = shutil.which("docker-registry")
    if binary is None:
        message = "docker-registry is not installed (scripts/docker.sh installs it)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("registry")
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\nlog:\n  level: warn\n")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "docker-registry did not start"
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
