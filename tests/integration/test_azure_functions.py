"""--target azure from a registered model, run by the local Functions host as users run it: the
bundle's layout against what the Functions host expects, `mpack serve` over real HTTP (all routes,
auth levels, the bad-input table, parity with MLflow's own predictions, concurrency), `mpack invoke`
as a CI step, and every failure mode the host must answer instead of hanging on."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pytest

from mpack.handlers.manifest import Manifest
from mpack.infra.functions_host.app_config import HostConfig
from mpack.infra.functions_host.host import FunctionsHost, HostRequest
from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.serve_process import ServeProcess

APPS = Path(__file__).resolve().parent.parent / "fixtures" / "functions_apps"


@pytest.fixture(scope="module")
def azure_zip(built) -> Path:
    return built("models:/fraud@champion", target="azure").artifact


@pytest.fixture(scope="module")
def served(azure_zip, tmp_path_factory):
    cache = tmp_path_factory.mktemp("azure-cache")
    with ServeProcess(azure_zip, "--max-concurrency", "2", cache=cache, ready=ServeProcess.FUNCTIONS_READY) as server:
        yield server


def _http(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _split(frame) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}).encode()


def test_bundle_layout_is_what_the_functions_host_expects(built, azure_zip):
    report = built("models:/fraud@champion", target="azure")
    assert report.handler == "function_app.app" and report.verification["ran"] is True
    with zipfile.ZipFile(azure_zip) as archive:
        names = set(archive.namelist())
        host_json = json.loads(archive.read("host.json"))
        manifest = Manifest.from_bytes(archive.read("mpack.json")).served()
        requirements = archive.read("requirements.txt").decode()
        function_app = archive.read("function_app.py").decode()
    assert host_json["version"] == "2.0" and host_json["extensions"]["http"]["routePrefix"] == "api"
    assert "from mpack.handlers.azure_function import app" in function_app
    site = ".python_packages/lib/site-packages/"
    for package in ("onnxruntime", "numpy", "azure/functions"):  # precompiled libraries ship bytecode in place of sources
        assert f"{site}{package}/__init__.pyc" in names and f"{site}{package}/__init__.py" not in names, package
    assert not any(n.startswith(site + p) for n in names for p in ("aws_lambda_powertools", "starlette", "mangum", "sklearn", "pandas", "mlflow"))
    handlers = {n.rsplit("/", 1)[-1] for n in names if n.startswith("mpack/handlers/")}
    assert "azure_function.py" in handlers and not any(h.startswith(("lambda_", "container_", "native_model")) for h in handlers)
    assert "onnxruntime==" in requirements and "azure-functions==" in requirements
    assert manifest["target"] == "azure" and manifest["build"]["auth"] == "function" and manifest["build"]["instance_memory_mb"] == 2048
    assert manifest["runtime"]["glibc"] == "2.28"  # Azure's Debian workers: current onnxruntime, not Lambda 3.11's 1.16


def test_served_routes_auth_levels_and_parity_with_mlflow(store, served):
    key = served.keys["default"]
    frame = store.frames["fraud"].iloc[:200]
    expected = mlflow.pyfunc.load_model("models:/fraud@champion").predict(frame)
    status, body, _ = _http(f"{served.url}/api/invocations", "POST", _split(frame), {"x-functions-key": key})
    assert status == 200, body
    assert json.loads(body)["predictions"] == np.asarray(expected).tolist()
    # the key as code= works too, and the master key; no key or a wrong key is a 401 with no body
    assert _http(f"{served.url}/api/invocations?code={served.keys['master']}", "POST", _split(frame.iloc[:2]))[0] == 200
    assert _http(f"{served.url}/api/invocations", "POST", _split(frame.iloc[:2]))[:2] == (401, b"")
    assert _http(f"{served.url}/api/invocations", "POST", _split(frame.iloc[:2]), {"x-functions-key": "wrong"})[0] == 401
    # probes are anonymous
    for route in ("ping", "health"):
        assert _http(f"{served.url}/api/{route}")[:2] == (200, b'{"status":"ok"}')
    assert _http(f"{served.url}/api/version")[0] == 200
    assert _http(f"{served.url}/api/metadata")[0] == 401
    assert json.loads(_http(f"{served.url}/api/metadata", headers={"x-functions-key": key})[1])["model"]["name"] == "fraud"
    # the Open Inference Protocol under /api/v2
    ready = _http(f"{served.url}/api/v2/health/ready", headers={"x-functions-key": key})
    assert ready[:2] == (200, b'{"ready":true}')
    metadata = json.loads(_http(f"{served.url}/api/v2/models/fraud", headers={"x-functions-key": key})[1])
    inputs = [{"name": i["name"], "shape": [3], "datatype": i["datatype"], "data": frame[i["name"]].iloc[:3].tolist()} for i in metadata["inputs"]]
    status, body, _ = _http(f"{served.url}/api/v2/models/fraud/infer", "POST", json.dumps({"inputs": inputs}).encode(), {"x-functions-key": key})
    assert status == 200, body
    outputs = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
    assert outputs["label"] == np.asarray(expected)[:3].tolist()
    # routing as the host routes: unknown path and a method no route takes are 404s
    assert _http(f"{served.url}/api/nothing")[0] == 404
    assert _http(f"{served.url}/api/ping", "DELETE")[0] == 404
    reports = served.wait_for_reports(10)
    assert any("Cold start:" in r for r in reports) or any("Cold start" in line for line in served.lines)
    assert all(" MB of 2048 MB" in r for r in reports)


@pytest.mark.parametrize(
    "body, content_type, status, needle",
    [
        (b"{not json", "application/json", 400, "JSON"),
        (b'{"dataframe_split": {"columns": ["f0"], "data": [[1e400]]}}', "application/json", 400, ""),
        (b'{"dataframe_records": [{"f00": 1}]}', "application/json", 400, "missing column"),
        (b"\xff\xfe", "application/json", 400, ""),
        (b"a,b\n1,2", "application/xml", 415, "content type"),
        (b"[" + b"1," * (3 * 1024 * 1024) + b"1]", "application/json", 413, "limit"),
    ],
)
def test_bad_input_is_answered_by_the_app_never_a_5xx(served, body, content_type, status, needle):
    got, answer, _ = _http(f"{served.url}/api/invocations", "POST", body, {"Content-Type": content_type, "x-functions-key": served.keys["default"]})
    assert got == status, answer[:300]
    document = json.loads(answer)
    assert needle.lower() in document["message"].lower()


def test_concurrent_clients_are_spread_over_instances_and_all_answered(store, served):
    frame = store.frames["fraud"]
    bodies = [_split(frame.iloc[i : i + 5]) for i in range(0, 200, 5)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: _http(f"{served.url}/api/invocations", "POST", b, {"x-functions-key": served.keys["default"]}), bodies))
    assert [a[0] for a in answers] == [200] * len(bodies)
    assert sum(len(json.loads(a[1])["predictions"]) for a in answers) == 200


def test_invoke_is_a_ci_smoke_test(azure_zip, tmp_path):
    good = mpack("invoke", str(azure_zip), "--cache-dir", str(tmp_path))
    assert good.returncode == 0, good.stderr
    assert "predictions" in good.stdout and "Executed 'Functions.invocations' (Succeeded" in good.stderr
    bad = mpack("invoke", str(azure_zip), "--cache-dir", str(tmp_path), "--data", '{"dataframe_split": {"columns": ["x"], "data": [[1]]}}')
    assert_clean_error(bad, "HTTP 400", "missing column")
    wrong_event = mpack("invoke", str(azure_zip), "--cache-dir", str(tmp_path), "--event", "sqs")
    assert_clean_error(wrong_event, "Lambda event sources")


def _app_with(azure_zip: Path, folder: Path, function_app: str) -> Path:
    """The built bundle's packages with another function_app.py (the fault fixtures)."""
    with zipfile.ZipFile(azure_zip) as archive:
        archive.extractall(folder)
    shutil.copyfile(APPS / function_app, folder / "function_app.py")
    for compiled in (folder / "__pycache__").glob("function_app.*.pyc"):
        compiled.unlink()  # the bundle's unchecked-hash .pyc would win over the new source
    return folder


def test_faults_are_answered_and_the_host_recovers(azure_zip, tmp_path):
    host = FunctionsHost(_app_with(azure_zip, tmp_path / "app", "faults_app.py"), HostConfig("faults", memory_mb=512, timeout_s=2))
    try:
        assert host.start() is None
        ok = host.handle(HostRequest("GET", "/api/ok/World", {"q": "x"}))
        assert (ok.status, ok.body) == (200, b"hello World x") and "ok called for World" in ok.log
        raised = host.handle(HostRequest("GET", "/api/raises"))
        assert raised.status == 500 and "ValueError: the function failed on purpose" in raised.log and "(Failed" in raised.log
        exited = host.handle(HostRequest("GET", "/api/exits"))
        assert exited.status == 500 and "exit status 3" in exited.log
        assert host.handle(HostRequest("GET", "/api/ok/again")).status == 200  # a fresh instance took over
        slow = host.handle(HostRequest("GET", "/api/sleeps", {"s": "30"}))
        assert slow.status == 503 and "Timeout value of 00:00:02 exceeded" in slow.log
        assert slow.duration_ms < 10_000
        hoarded = host.handle(HostRequest("GET", "/api/hoards"))
        assert hoarded.status == 500 and "over the instance memory of 512 MB" in hoarded.log
        assert host.handle(HostRequest("GET", "/api/slow_async")).body == b"async done"
        assert host.handle(HostRequest("GET", "/api/admin_only", headers={"x-functions-key": host.keys.host_default})).status == 401
        assert host.handle(HostRequest("GET", "/api/admin_only", headers={"x-functions-key": host.keys.master})).status == 200
    finally:
        host.close()


def test_the_worker_sees_only_its_app_its_packages_and_its_settings(azure_zip, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///must-not-leak.db")
    app = _app_with(azure_zip, tmp_path / "app", "faults_app.py")
    host = FunctionsHost(app, HostConfig("isolated", environment={"GREETING": "hello"}))
    try:
        answer = host.handle(HostRequest("GET", "/api/environment"))
        assert answer.status == 200, answer.log
        seen = json.loads(answer.body)
    finally:
        host.close()
    assert seen["env"]["GREETING"] == "hello" and seen["env"]["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert seen["env"]["AzureWebJobsScriptRoot"] == str(app) and seen["env"]["MLFLOW_TRACKING_URI"] is None
    assert seen["env"]["HOME"] != str(Path.home())
    outside = [p for p in seen["path"] if "site-packages" in p and not p.startswith(str(app))]
    assert not outside, outside  # no site-packages but the app's own .python_packages


def test_an_app_that_fails_to_import_is_answered_with_its_error(azure_zip, tmp_path):
    host = FunctionsHost(_app_with(azure_zip, tmp_path / "app", "broken_app.py"), HostConfig("broken"))
    try:
        failed = host.start()
        assert failed is not None and "a_dependency_the_bundle_forgot" in failed.error
        answer = host.handle(HostRequest("POST", "/api/invocations", body=b"{}"))
        assert answer.status == 503 and b"a_dependency_the_bundle_forgot" in answer.body
    finally:
        host.close()


def test_azure_only_options_are_refused_elsewhere_and_checked(store, tmp_path):
    wrong_target = mpack("build", "--model", "models:/fraud@champion", "--target", "lambda", "--auth", "anonymous", store=store)
    assert_clean_error(wrong_target, "--auth only applies to --target azure")
    bad_memory = mpack("build", "--model", "models:/fraud@champion", "--target", "azure", "--instance-memory", "1000", store=store)
    assert_clean_error(bad_memory, "--instance-memory 1000", "2048")
