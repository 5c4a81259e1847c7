"""`mpack serve` as users run it: the real boto3 Lambda client against its Invoke API
(RequestResponse, Event, DryRun, LogType=Tail, errors), plain HTTP through its gateway, Lambda's
concurrency (instances up to --max-concurrency, then queueing) and a 200-request load test."""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.helpers.serve_process import ServeProcess
from tests.helpers.sockets import closed_by_server

FUNCTIONS = Path(__file__).resolve().parent.parent / "fixtures" / "functions"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mpack-cache")


@pytest.fixture(scope="module")
def fraud_server(built, cache):
    with ServeProcess(built("models:/fraud@champion").artifact, "--max-concurrency", "4", cache=cache) as server:
        yield server


def lambda_client(url: str):
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 0}, read_timeout=60),
    )


def _split(frame):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def _http(url: str, method: str = "GET", body: bytes | None = None, content_type: str = "application/json"):
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@pytest.mark.slow
def test_boto3_invoke_request_response_tail_event_and_dry_run(store, fraud_server):
    client = lambda_client(fraud_server.url)
    frame = store.frames["fraud"].iloc[:10]
    expected = store.estimators["fraud"].predict(frame).tolist()
    answer = client.invoke(FunctionName=fraud_server.function, Payload=json.dumps(_split(frame)))
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST" and "FunctionError" not in answer
    assert json.loads(answer["Payload"].read())["predictions"] == expected

    tailed = client.invoke(FunctionName=fraud_server.function, Payload=json.dumps(_split(frame)), LogType="Tail")
    log = base64.b64decode(tailed["LogResult"]).decode()
    request_id = tailed["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {request_id}" in log and f"REPORT RequestId: {request_id}\tDuration:" in log

    before = len(fraud_server.reports())
    started = time.monotonic()
    queued = client.invoke(FunctionName=fraud_server.function, Payload=json.dumps(_split(frame)), InvocationType="Event")
    assert queued["StatusCode"] == 202 and time.monotonic() - started < 5
    assert len(fraud_server.wait_for_reports(before + 1)) == before + 1  # processed in the background
    dry = client.invoke(FunctionName=fraud_server.function, Payload=b"{}", InvocationType="DryRun")
    assert dry["StatusCode"] == 204

    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{fraud_server.function}"
    assert client.invoke(FunctionName=arn, Payload=json.dumps(_split(frame)))["StatusCode"] == 200


@pytest.mark.slow
def test_boto3_sees_lambdas_errors(fraud_server):
    client = lambda_client(fraud_server.url)
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="Function not found"):
        client.invoke(FunctionName="no-such-function", Payload=b"{}")
    with pytest.raises(client.exceptions.InvalidRequestContentException, match="Could not parse request body into json"):
        client.invoke(FunctionName=fraud_server.function, Payload=b"{not json")
    with pytest.raises(client.exceptions.RequestTooLargeException):
        client.invoke(FunctionName=fraud_server.function, Payload=b'"' + b"x" * 300_000 + b'"', InvocationType="Event")
    refused = client.invoke(FunctionName=fraud_server.function, Payload=json.dumps({"dataframe_split": {"columns": ["f0"], "data": [[1]]}}))
    assert json.loads(refused["Payload"].read())["error_code"] == "INVALID_PARAMETER_VALUE"  # answered, not crashed
    with pytest.raises(client.exceptions.InvalidRequestContentException, match="nested too deeply"):
        client.invoke(FunctionName=fraud_server.function, Payload=b"[" * 2000 + b"]" * 2000)


@pytest.mark.slow
def test_the_function_name_awss_emulator_documents_reaches_the_function(store, fraud_server):
    frame = store.frames["fraud"].iloc[:3]
    answer = lambda_client(fraud_server.url).invoke(FunctionName="function", Payload=json.dumps(_split(frame)))
    assert json.loads(answer["Payload"].read())["predictions"] == store.estimators["fraud"].predict(frame).tolist()


@pytest.mark.slow
def test_http_gateway_speaks_plain_http(store, fraud_server):
    frame = store.frames["fraud"].iloc[:4]
    expected = store.estimators["fraud"].predict(frame).tolist()
    status, body, _ = _http(f"{fraud_server.url}/invocations", "POST", json.dumps(_split(frame)).encode())
    assert status == 200 and json.loads(body)["predictions"] == expected
    csv = frame.to_csv(index=False).encode()
    status, body, _ = _http(f"{fraud_server.url}/invocations", "POST", csv, "text/csv")
    assert status == 200 and json.loads(body)["predictions"] == expected
    status, _, _ = _http(f"{fraud_server.url}/ping")
    assert status == 200
    status, body, _ = _http(f"{fraud_server.url}/invocations", "POST", b'{"dataframe_split": {"columns": ["f0"], "data": [[1]]}}')
    assert status == 400 and "missing column" in json.loads(body)["message"]
    status, body, _ = _http(f"{fraud_server.url}/invocations", "POST", b"{broken")
    assert status == 400 and json.loads(body)["error_code"] == "MALFORMED_REQUEST"
    status, _, _ = _http(f"{fraud_server.url}/nowhere")
    assert status == 404
    status, body, _ = _http(f"{fraud_server.url}/invocations", "POST", b'{"dataframe_split": "\xff\xfe"}')
    assert status == 400 and json.loads(body)["message"] == "request body is not valid UTF-8"
    status, body, _ = _http(f"{fraud_server.url}/invocations", "POST", b"[" + b"1," * 3_500_000 + b"1]")
    assert status == 413 and json.loads(body)["error_code"] == "PAYLOAD_TOO_LARGE"  # the bundle's and the container's shape


@pytest.mark.slow
def test_load_200_requests_from_8_clients_on_at_most_4_instances(store, built, cache):
    frame = store.frames["fraud"].iloc[:200]
    expected = store.estimators["fraud"].predict(frame).tolist()
    requests = [json.dumps(_split(frame.iloc[[i]])).encode() for i in range(200)]
    with ServeProcess(built("models:/fraud@champion").artifact, "--max-concurrency", "4", "--quiet", cache=cache) as server:
        host, port = server.url.removeprefix("http://").split(":")
        answers: dict[int, object] = {}

        def client(worker: int) -> None:
            connection = http.client.HTTPConnection(host, int(port), timeout=60)  # keep-alive, like a real client
            for index in range(worker, 200, 8):
                path = f"/2015-03-31/functions/{server.function}/invocations" if index % 2 else "/invocations"
                connection.request("POST", path, requests[index], {"Content-Type": "application/json"})
                response = connection.getresponse()
                answers[index] = (response.status, json.loads(response.read()))
            connection.close()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(client, range(8)))
        reports = server.wait_for_reports(200)
    assert sorted(answers) == list(range(200))  # nothing lost
    assert all(status == 200 and body["predictions"] == [expected[i]] for i, (status, body) in answers.items())
    cold = [line for line in reports if "Init Duration" in line]
    assert len(reports) == 200 and 1 <= len(cold) <= 4  # every cold start reported, never more than 4 instances


def test_concurrent_requests_start_instances_up_to_the_limit_then_queue(cache):
    with ServeProcess(FUNCTIONS, "--handler", "behaviours.handler", "--max-concurrency", "2", cache=cache) as server:
        client = lambda_client(server.url)
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.invoke(FunctionName=server.function, Payload=b'{"action": "sleep", "seconds": 0.6}'), range(4)))
        elapsed = time.monotonic() - started
        reports = server.wait_for_reports(4)
        raised = client.invoke(FunctionName=server.function, Payload=b'{"action": "raise"}')
        children = _children(server.process.pid)
        assert children  # the runtimes are running...
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]  # ...and are gone after SIGTERM
    assert server.process.returncode == 0
    assert all(a["StatusCode"] == 200 and json.loads(a["Payload"].read()) == {"slept": 0.6} for a in answers)
    assert elapsed >= 1.2  # two rounds of two: the other two requests waited for a free instance
    assert len([r for r in reports if "Init Duration" in r]) == 2
    assert raised["FunctionError"] == "Unhandled" and json.loads(raised["Payload"].read())["errorType"] == "ValueError"


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def test_a_failed_event_invocation_is_retried_as_on_lambda(cache):
    with ServeProcess(FUNCTIONS, "--handler", "behaviours.handler", "--async-retry-delay", "0.2", cache=cache) as server:
        client = lambda_client(server.url)
        assert client.invoke(FunctionName=server.function, Payload=b'{"action": "raise"}', InvocationType="Event")["StatusCode"] == 202
        reports = server.wait_for_reports(3, timeout_s=30)
        time.sleep(1.0)  # no fourth attempt comes
        retries = [line for line in server.lines if "asynchronous invocation" in line]
        final = server.reports()
    assert len(reports) >= 3 and len(final) == 3  # the first attempt and Lambda's two retries
    assert len(retries) == 2 and "retry 1 of 2 in 0.2 s" in retries[0] and "retry 2 of 2 in 0.4 s" in retries[1]


def test_stopping_serve_does_not_wait_for_a_pending_retry(cache):
    with ServeProcess(FUNCTIONS, "--handler", "behaviours.handler", cache=cache) as server:  # retry in 60 s
        client = lambda_client(server.url)
        client.invoke(FunctionName=server.function, Payload=b'{"action": "raise"}', InvocationType="Event")
        server.wait_for_reports(1)
        started = time.monotonic()
        assert server.stop() == 0
    assert time.monotonic() - started < 10


def test_a_port_outside_tcps_range_is_a_clean_error(cache):
    from tests.helpers.cli import assert_clean_error, mpack

    assert_clean_error(mpack("serve", str(FUNCTIONS), "--handler", "behaviours.handler", "--port", "99999", "--cache-dir", str(cache)), "--port 99999 is not a TCP port")


def test_connections_that_send_nothing_are_closed_by_the_idle_timeout(cache):
    """150 clients connect and say nothing (each holds one of the 256 connection slots): all are
    closed after --idle-timeout, as a keep-alive connection idle after its answer is; the server
    still answers afterwards."""
    import socket
    from urllib.parse import urlsplit

    with ServeProcess(FUNCTIONS, "--handler", "behaviours.handler", "--idle-timeout", "1.5", cache=cache) as server:
        address = (urlsplit(server.url).hostname, urlsplit(server.url).port)
        client = lambda_client(server.url)
        assert client.invoke(FunctionName=server.function, Payload=b'{"action": "echo"}')["StatusCode"] == 200  # the instance is warm
        keep_alive = http.client.HTTPConnection(*address, timeout=10)
        keep_alive.request("POST", f"/2015-03-31/functions/{server.function}/invocations", body=b'{"action": "echo"}')
        assert keep_alive.getresponse().read() is not None
        opened = time.monotonic()
        silent = [socket.create_connection(address, timeout=5) for _ in range(150)]
        try:
            deadline = opened + 15
            early = [sock for sock in silent[:5] if closed_by_server(sock, opened + 1.0 - time.monotonic())]  # not before the timeout
            closed = [sock for sock in silent if closed_by_server(sock, deadline - time.monotonic())]
            idle_after_answer_closed = closed_by_server(keep_alive.sock, deadline - time.monotonic())
            took = time.monotonic() - opened
        finally:
            for sock in silent:
                sock.close()
            keep_alive.close()
        assert not early
        assert len(closed) == 150 and idle_after_answer_closed
        assert took < 15
        answer = client.invoke(FunctionName=server.function, Payload=b'{"action": "echo", "n": 1}')
        assert answer["StatusCode"] == 200 and "FunctionError" not in answer


@pytest.fixture(scope="module")
def mlflow_serve(store):
    """`mlflow models serve` on the same registered model, as users compare against it."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", "models:/realistic/1", "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    environment = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # it execs uvicorn
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not _reachable(url):
        assert process.poll() is None and time.monotonic() < deadline, "mlflow models serve did not start"
        time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)


def _reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/ping", timeout=2)
        return True
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


@pytest.mark.slow
def test_every_request_mlflow_serve_answers_gets_the_same_predictions(store, built, cache, mlflow_serve):
    """A drop-in for `mlflow models serve`: the same requests to both; wherever MLflow answers 200,
    mpack answers 200 with the same predictions (the realistic pipeline: imputer, scaler, encoder,
    forest; nulls, an ID column, every request format, CSV)."""
    frame = store.frames["realistic"].iloc[:300]
    records = json.loads(frame.to_json(orient="records"))
    split = json.loads(frame.to_json(orient="split", index=False))
    with_id = [dict(r, transaction_id=f"t{i}") for i, r in enumerate(records)]
    bodies = [
        ("application/json", {"dataframe_split": split}),
        ("application/json", {"dataframe_records": records}),
        ("application/json", {"dataframe_records": with_id}),
        ("application/json", {"instances": records}),
        ("application/json", {"inputs": {c: split["data"] and [row[i] for row in split["data"]] for i, c in enumerate(split["columns"])}}),
        ("application/json", {"dataframe_records": [dict(records[0], country=None), dict(records[1], age=None)]}),
        ("text/csv", frame.to_csv(index=False)),
    ]
    compared = 0
    with ServeProcess(built("models:/realistic/1").artifact, cache=cache) as server:
        for content_type, body in bodies:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            theirs = _http(f"{mlflow_serve}/invocations", "POST", raw, content_type)
            if theirs[0] != 200:
                continue
            ours = _http(f"{server.url}/invocations", "POST", raw, content_type)
            assert ours[0] == 200, (content_type, ours[1][:300])
            assert json.loads(ours[1])["predictions"] == json.loads(theirs[1])["predictions"], content_type
            compared += 1
    assert compared >= 6  # MLflow answered (nearly) all of them
