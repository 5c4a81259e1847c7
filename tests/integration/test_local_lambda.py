"""The local Lambda platform: real bundles and tiny failure-mode handlers run under the real AWS
runtime interface client (awslambdaric) against mpack's Runtime API, through `mpack invoke` and
through the library. Limits (timeout, memory, init) are enforced and reported in Lambda's format."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from mpack.handlers.manifest import Manifest, ModelInfo
from mpack.infra.local.function_config import FunctionConfig
from mpack.infra.local.local_bundle import open_bundle
from mpack.infra.local.local_lambda import LocalLambda

from tests.helpers.cli import assert_clean_error, mpack

FUNCTIONS = Path(__file__).resolve().parent.parent / "fixtures" / "functions"
REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>[\d.]+) ms\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB\tMax Memory Used: (?P<used>\d+) MB(\tInit Duration: (?P<init>[\d.]+) ms)?(?P<rest>.*)$",
    re.M,
)


@pytest.fixture(scope="module")
def fraud_zip(built) -> Path:
    return built("models:/fraud@champion", runtime="onnx").artifact  # heavy enough to measure (the micro bundle: test_micro_runtime.py)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mpack-cache")


def invoke(*args: str, cache: Path, stdin: str | None = None, timeout: float = 120):
    return mpack("invoke", *args, "--cache-dir", str(cache), stdin=stdin, timeout=timeout)


def report_of(stderr: str) -> dict:
    found = list(REPORT.finditer(stderr))
    assert found, stderr
    return found[-1].groupdict()


def local(handler: str, cache: Path, **settings) -> LocalLambda:
    """The fixture functions on the local platform, through the library (no CLI in between)."""
    return LocalLambda(open_bundle(FUNCTIONS, cache), FunctionConfig(name="behaviours", handler=handler, **settings), cache)


def _split(frame):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


# -- a real bundle through `mpack invoke` -----------------------------------------------------------


@pytest.mark.slow
def test_invoke_answers_like_the_model_with_a_measured_report(store, fraud_zip, cache):
    frame = store.frames["fraud"].iloc[:20]
    result = invoke(str(fraud_zip), "--data", json.dumps(_split(frame)), "--json", cache=cache)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"] == store.estimators["fraud"].predict(frame).tolist()
    report = report_of(result.stderr)
    assert report["init"] is not None and 20 < float(report["init"]) < 10_000  # a cold start, measured
    assert report["size"] == "1024" and 20 <= int(report["used"]) < 1024  # measured, not the memory size
    assert int(report["billed"]) >= float(report["duration"]) + float(report["init"])  # init is billed since 2025
    assert f"START RequestId: {report['id']} Version: $LATEST" in result.stderr
    assert f"END RequestId: {report['id']}" in result.stderr
    start, end = result.stderr.index("START RequestId"), result.stderr.index("END RequestId")
    assert '"Latency"' in result.stderr[start:end]  # the function's EMF metrics, inside its invocation


@pytest.mark.slow
@pytest.mark.parametrize("event", ["apigw-rest", "apigw-http", "function-url", "alb", "sqs"])
def test_invoke_wraps_the_data_into_each_event_source(store, fraud_zip, cache, event):
    frame = store.frames["fraud"].iloc[:3]
    expected = store.estimators["fraud"].predict(frame).tolist()
    result = invoke(str(fraud_zip), "--event", event, "--data", json.dumps(_split(frame)), "--json", cache=cache)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    if event == "sqs":
        assert answer == {"batchItemFailures": []}
        assert json.dumps(expected) in result.stderr.replace(", ", ",").replace(",", ", ")  # logged per message
    else:
        assert answer["statusCode"] == 200
        assert json.loads(answer["body"])["predictions"] == expected


@pytest.mark.slow
def test_invoke_reads_stdin_an_event_file_or_the_input_example(store, fraud_zip, cache, tmp_path):
    frame = store.frames["fraud"].iloc[:2]
    expected = store.estimators["fraud"].predict(frame).tolist()
    piped = invoke(str(fraud_zip), "--json", stdin=json.dumps(_split(frame)), cache=cache)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["predictions"] == expected
    event_file = tmp_path / "event.json"
    hand_made = {"version": "2.0", "rawPath": "/ping", "requestContext": {"http": {"method": "GET", "path": "/ping"}}, "headers": {}, "isBase64Encoded": False}
    event_file.write_text(json.dumps(hand_made))
    incomplete = invoke(str(fraud_zip), "--event-file", str(event_file), cache=cache)  # API Gateway always sends a stage
    assert_clean_error(incomplete, "HTTP 400", "event is incomplete", "stage")
    hand_made["requestContext"]["stage"] = "$default"
    event_file.write_text(json.dumps(hand_made))
    pinged = invoke(str(fraud_zip), "--event-file", str(event_file), "--json", cache=cache)
    assert pinged.returncode == 0, pinged.stderr
    assert json.loads(pinged.stdout)["statusCode"] == 200
    example = invoke(str(fraud_zip), cache=cache)
    assert example.returncode == 0, example.stderr
    assert "input example" in example.stderr and '"predictions"' in example.stdout


@pytest.mark.slow
def test_invoke_fails_clearly_on_bad_input_and_refused_requests(fraud_zip, cache, tmp_path):
    assert_clean_error(invoke(str(fraud_zip), "--data", "{not json", cache=cache), "--data is not valid JSON")
    assert_clean_error(invoke(str(fraud_zip), "--event", "kafka", "--data", "{}", cache=cache), "unknown --event 'kafka'", "apigw-http")
    assert_clean_error(invoke(str(tmp_path / "missing.zip"), cache=cache), "missing.zip does not exist")
    (tmp_path / "not-a.zip").write_text("hello")
    assert_clean_error(invoke(str(tmp_path / "not-a.zip"), cache=cache), "is not a zip file")
    refused = invoke(str(fraud_zip), "--data", json.dumps({"dataframe_split": {"columns": ["f0"], "data": [[1.0]]}}), cache=cache)
    assert_clean_error(refused, "the function answered with an error", "missing column")
    request_id = report_of(refused.stderr)["id"]
    assert '"function_request_id":"' + request_id in refused.stderr  # Powertools saw the real Lambda context
    assert_clean_error(invoke(str(fraud_zip), "--memory", "64", cache=cache), "--memory 64 is outside Lambda's range")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 2000 + "]" * 2000)
    assert_clean_error(invoke(str(fraud_zip), "--data-file", str(deep), cache=cache), "nested too deeply")
    damaged = tmp_path / "damaged.zip"
    data = bytearray(fraud_zip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # inside a compressed member: the central directory survives
    damaged.write_bytes(bytes(data))
    assert_clean_error(invoke(str(damaged), cache=cache), "is a corrupt zip")


@pytest.mark.slow
def test_a_corrupt_model_is_an_init_error_with_its_message(fraud_zip, cache, tmp_path):
    unpacked = open_bundle(fraud_zip, cache).task_root
    broken = tmp_path / "broken"
    shutil.copytree(unpacked, broken)
    for path in [broken, *broken.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    model = broken / "model.onnx"
    model.write_bytes(model.read_bytes()[:-64] + b"\0" * 64)
    started = time.monotonic()
    result = invoke(str(broken), "--data", "{}", cache=cache)
    assert time.monotonic() - started < 60
    assert_clean_error(result, "the function failed: ModelLoadError", "sha256")
    assert "INIT_REPORT Init Duration:" in result.stderr and "Status: error\tError Type: ModelLoadError" in result.stderr


def test_a_bundle_for_another_python_is_refused(tmp_path, cache):
    model = ModelInfo("m", "1", "local:m", "sklearn", "classifier", "model.onnx", "0" * 64, signature={}, prediction={})
    manifest = Manifest(mpack_version="0", target="lambda", handler="app.handler", models=[model], runtime={"python": "3.12", "arch": "arm64"}, build={})
    (tmp_path / "mpack.json").write_bytes(manifest.to_bytes())
    assert_clean_error(invoke(str(tmp_path), "--data", "{}", cache=cache), "built for Python 3.12 on arm64", "--python")


# -- limits and failures, with one tiny handler per failure mode -------------------------------------


def test_timeout_kills_the_instance_and_reports_lambdas_message(cache):
    started = time.monotonic()
    result = invoke(str(FUNCTIONS), "--handler", "behaviours.handler", "--timeout", "1", "--data", '{"action": "sleep", "seconds": 30}', cache=cache)
    assert time.monotonic() - started < 15
    assert_clean_error(result, "Sandbox.Timedout", "Task timed out after 1.00 seconds")
    assert "Status: timeout" in report_of(result.stderr)["rest"]


def test_a_daemon_the_function_started_does_not_outlive_its_instance(cache, tmp_path):
    """setsid + double fork leaves the process group and the parent; the runtime is a subreaper,
    so the daemon stays in its tree and dies with the instance."""
    pid_file = tmp_path / "daemon.pid"
    result = invoke(str(FUNCTIONS), "--handler", "behaviours.handler", "--data", json.dumps({"action": "daemon", "file": str(pid_file)}), cache=cache)
    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":  # killed, waiting to be reaped
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise AssertionError(f"daemon {pid} outlived mpack invoke")


def test_memory_over_the_limit_is_killed_and_reported(cache):
    result = invoke(str(FUNCTIONS), "--handler", "behaviours.handler", "--memory", "128", "--data", '{"action": "allocate", "mb": 400}', cache=cache)
    assert_clean_error(result, "Runtime.OutOfMemory", "signal: killed")
    report = report_of(result.stderr)
    assert report["used"] == "128" and "Error Type: Runtime.OutOfMemory" in report["rest"]


def test_max_memory_used_is_the_measured_peak(cache):
    with local("behaviours.handler", cache, memory_mb=1024) as function:
        small = function.invoke(b'{"action": "echo"}')
        big = function.invoke(b'{"action": "allocate", "mb": 200}')
    assert small.error_type is None and big.error_type is None
    assert small.max_memory_used_mb < 100
    assert 200 <= big.max_memory_used_mb < 400
    assert big.init_duration_ms is None  # same instance, warm


def test_function_errors_come_back_as_unhandled_with_the_exception(cache):
    with local("behaviours.handler", cache) as function:
        raised = function.invoke(b'{"action": "raise"}')
        after = function.invoke(b'{"action": "echo"}')
    assert raised.function_error == "Unhandled" and raised.error_type == "Unhandled"
    body = json.loads(raised.payload)
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "the model exploded" and body["stackTrace"]
    assert after.error_type is None and after.instance == raised.instance  # a handled error keeps the instance


def test_a_crash_mid_invocation_gets_a_fresh_instance_next(cache):
    with local("behaviours.handler", cache) as function:
        first = function.invoke(b'{"action": "echo"}')
        crashed = function.invoke(b'{"action": "crash"}')
        exited = function.invoke(b'{"action": "exit"}')
        fresh = function.invoke(b'{"action": "echo"}')
    assert crashed.error_type == "Runtime.ExitError" and "signal: segmentation fault" in json.loads(crashed.payload)["errorMessage"]
    assert exited.error_type == "Runtime.ExitError" and "exit status 3" in json.loads(exited.payload)["errorMessage"]
    assert exited.init_duration_ms is not None and fresh.init_duration_ms is not None  # each a cold start
    assert len({first.instance, exited.instance, fresh.instance}) == 3
    assert json.loads(fresh.payload)["pid"] != json.loads(first.payload)["pid"]


def test_responses_over_6_mb_are_refused_as_on_lambda(cache):
    with local("behaviours.handler", cache) as function:
        result = function.invoke(b'{"action": "big"}')
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size" in json.loads(result.payload)["errorMessage"]


def test_the_runtime_sees_lambdas_environment_and_a_read_only_task_root(cache, tmp_path):
    keys = [
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_RUNTIME_API",
        "_X_AMZN_TRACE_ID",
        "CUSTOM",
    ]
    zipped = shutil.make_archive(str(tmp_path / "behaviours"), "zip", FUNCTIONS)
    result = invoke(zipped, "--handler", "behaviours.handler", "--memory", "512", "--env", "CUSTOM=yes", "--json", "--data", json.dumps({"action": "environment", "keys": keys}), cache=cache)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["_HANDLER"] == "behaviours.handler" and seen["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "function" and seen["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert seen["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.") and seen["CUSTOM"] == "yes"
    assert seen["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:") and seen["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert seen["cwd"] == seen["LAMBDA_TASK_ROOT"] and seen["tmp"] != "/tmp" and "mpack-tmp" in seen["tmp"]
    task_root = Path(seen["LAMBDA_TASK_ROOT"])
    assert task_root.is_relative_to(cache) and not (task_root.stat().st_mode & 0o222)  # unpacked read-only
    assert_clean_error(invoke(zipped, "--handler", "behaviours.handler", "--env", "NOEQUALS", cache=cache), "--env 'NOEQUALS' is not KEY=VALUE")


def test_an_import_error_is_an_init_error_and_the_platform_does_not_hang(cache):
    started = time.monotonic()
    result = invoke(str(FUNCTIONS), "--handler", "broken_import.handler", "--data", "{}", cache=cache)
    assert time.monotonic() - started < 30
    assert_clean_error(result, "RuntimeError", "weights.bin is missing")
    missing = invoke(str(FUNCTIONS), "--handler", "nowhere.handler", "--data", "{}", cache=cache)
    assert_clean_error(missing, "Runtime.ImportModuleError", "No module named 'nowhere'")


def test_init_over_the_limit_is_reported_then_retried_inside_the_invocation(cache):
    """Lambda's 10 s init limit, shortened to 0.5 s here: the init is reported as timed out, then
    run again under the function's timeout (suppressed init)."""
    with local("slow_init.handler", cache, init_limit_s=0.5, timeout_s=5, environment=(("INIT_SECONDS", "1"),)) as function:
        result = function.invoke(b"{}")
    assert result.error_type is None and json.loads(result.payload) == {"ready": True}
    assert "INIT_REPORT Init Duration: 500.00 ms\tPhase: init\tStatus: timeout" in result.log
    assert result.init_duration_ms is None and result.duration_ms >= 1000  # the re-init is billed in Duration
    with local("slow_init.handler", cache, init_limit_s=0.5, timeout_s=1, environment=(("INIT_SECONDS", "3"),)) as function:
        started = time.monotonic()
        result = function.invoke(b"{}")
    assert result.error_type == "Sandbox.Timedout" and time.monotonic() - started < 5


def test_output_is_split_per_invocation_even_when_a_function_is_chatty(cache):
    with local("behaviours.handler", cache) as function:
        chatty = function.invoke(b'{"action": "print", "lines": 8000}')  # ~1.7 MB, more than the pipe holds
        quiet = function.invoke(b'{"action": "echo"}')
    assert chatty.error_type is None and chatty.log.count('"padding"') == 8000
    assert '"padding"' not in quiet.log


def test_a_runtime_that_exits_during_init_is_reported_not_waited_for(cache):
    started = time.monotonic()
    with local("exit_on_import.handler", cache) as function:
        result = function.invoke(b"{}")
    assert time.monotonic() - started < 10
    assert result.error_type == "Runtime.ExitError"
    assert json.loads(result.payload)["errorMessage"] == f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 2"
    assert "Phase: init\tStatus: error\tError Type: Runtime.ExitError" in result.log
