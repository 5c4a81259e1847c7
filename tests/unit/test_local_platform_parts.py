"""Pure parts of the local Lambda platform: log line formats, configuration checks, the gateway's
event and response mapping, and the HTTP/1.1 reader (over a real socket pair)."""

from __future__ import annotations

import base64
import json
import socket
import threading

import pytest
from mpack.infra.errors import MpackError
from mpack.infra.local import lambda_logs
from mpack.infra.local.function_config import FunctionConfig, function_name_for, parse_environment
from mpack.infra.local.http_gateway import http_api_event, http_reply
from mpack.infra.local.http_wire import Connection, Reply, Request, WireServer
from mpack.infra.local.local_server import _function_name
from mpack.packager.cli.local import InvokeInput, answer_failure, event_payload

from tests.helpers.sockets import closed_by_server


def test_report_line_is_lambdas_format():
    line = lambda_logs.report_line("abc", 15.744, 1024, 56, 130.491)
    assert line == "REPORT RequestId: abc\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 1024 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms"
    warm = lambda_logs.report_line("abc", 0.2, 128, 40, None)
    assert warm.endswith("Max Memory Used: 40 MB") and "Billed Duration: 1 ms" in warm
    failed = lambda_logs.report_line("abc", 3000.0, 128, 128, None, "error", "Runtime.OutOfMemory")
    assert failed.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert lambda_logs.init_report_line(10000, "init", "timeout") == "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout"
    assert lambda_logs.timed_out_line("abc", 3).endswith(" abc Task timed out after 3.00 seconds")


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"memory_mb": 64}, "--memory 64 is outside"),
        ({"memory_mb": 20_000}, "--memory 20000 is outside"),
        ({"timeout_s": 901}, "--timeout 901 is outside"),
        ({"name": "has space"}, "function name 'has space' is not valid"),
        ({"environment": (("_HANDLER", "x.y"),)}, "--env _HANDLER is set by Lambda"),
        ({"environment": (("BIG", "x" * 5000),)}, "over Lambda's 4 KB limit"),
    ],
)
def test_function_config_refuses_what_lambda_refuses(settings, needle):
    with pytest.raises(MpackError, match=needle):
        FunctionConfig(**{"name": "fn", "handler": "app.handler", **settings})


def test_environment_and_names_from_the_command_line():
    assert parse_environment(["A=1", "B_2=x=y", "EMPTY="]) == (("A", "1"), ("B_2", "x=y"), ("EMPTY", ""))
    for bad in ("NOEQUALS", "=value", "1ST=x", "WITH-DASH=x"):
        with pytest.raises(MpackError, match="is not KEY=VALUE"):
            parse_environment([bad])
    assert function_name_for("fraud model/v2") == "fraud-model-v2"
    assert function_name_for("") == "function"
    assert _function_name("arn:aws:lambda:us-east-1:000000000000:function:fraud:$LATEST") == "fraud:$LATEST"
    assert _function_name("fraud") == "fraud"


def test_gateway_event_is_an_http_api_v2_event():
    request = Request("POST", "/invocations?a=1&a=2&b=", {"content-type": "application/json", "cookie": "k=v; x=y", "user-agent": "curl/8"}, b'{"x": 1}', ("127.0.0.1", 5000))
    event = http_api_event(request, "localhost:3000")
    assert event["version"] == "2.0" and event["rawPath"] == "/invocations" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""} and event["cookies"] == ["k=v", "x=y"]
    assert event["requestContext"]["http"] == {"method": "POST", "path": "/invocations", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl/8"}
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False and event["headers"]["host"] == "localhost:3000"
    binary = http_api_event(Request("POST", "/", {"content-type": "application/octet-stream"}, b"\xff\x00", ("127.0.0.1", 1)), "h")
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\x00"
    assert "body" not in http_api_event(Request("GET", "/ping", {}, b"", ("127.0.0.1", 1)), "h")


def test_gateway_maps_results_as_api_gateway_does():
    proxy = http_reply(json.dumps({"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-A": "1"}, "body": "made", "cookies": ["c=1"]}).encode())
    assert (proxy.status, proxy.body, proxy.content_type) == (201, b"made", "text/plain")
    assert ("x-a", "1") in proxy.headers and ("Set-Cookie", "c=1") in proxy.headers
    encoded = http_reply(json.dumps({"statusCode": 200, "body": base64.b64encode(b"\x01\x02").decode(), "isBase64Encoded": True}).encode())
    assert encoded.body == b"\x01\x02"
    bare = http_reply(b'{"predictions": [1]}')  # payload 2.0: anything without statusCode is a 200 JSON body
    assert bare.status == 200 and json.loads(bare.body) == {"predictions": [1]}
    assert http_reply(b"not json").status == 502


def test_answer_failure_tells_a_refused_prediction_from_an_answer():
    assert answer_failure(b'{"predictions": [1]}', "direct") is None
    assert answer_failure(b'{"error_code": "BAD_REQUEST", "message": "no"}', "direct") == "BAD_REQUEST: no"
    assert answer_failure(b'{"statusCode": 415, "body": "x"}', "apigw-http") == "HTTP 415: x"
    assert answer_failure(b'{"batchItemFailures": [{"itemIdentifier": "1"}]}', "sqs") == "1 SQS record(s) failed"
    assert answer_failure(b'{"batchItemFailures": []}', "sqs") is None


def test_event_payload_sources_and_conflicts(tmp_path):
    notices = []
    example = {"instances": [[1.0]]}
    assert json.loads(event_payload(InvokeInput(), example, None, notices.append)) == example and notices
    assert json.loads(event_payload(InvokeInput(), example, '{"inputs": [[2.0]]}', notices.append)) == {"inputs": [[2.0]]}
    wrapped = json.loads(event_payload(InvokeInput(data='{"inputs": [[2.0]]}', event="alb"), None, None, notices.append))
    assert wrapped["requestContext"]["elb"] and json.loads(wrapped["body"]) == {"inputs": [[2.0]]}
    csv = json.loads(event_payload(InvokeInput(data="a,b\n1,2\n", event="apigw-http", content_type="text/csv"), None, None, notices.append))
    assert csv["body"] == "a,b\n1,2\n" and csv["headers"]["content-type"] == "text/csv"
    with pytest.raises(MpackError, match="both --data and --data-file"):
        event_payload(InvokeInput(data="{}", data_file=tmp_path / "x"), None, None, notices.append)
    with pytest.raises(MpackError, match="cannot be combined"):
        event_payload(InvokeInput(data="{}", event_file=tmp_path / "x"), None, None, notices.append)
    with pytest.raises(MpackError, match="no request to send"):
        event_payload(InvokeInput(), None, "  ", notices.append)
    with pytest.raises(MpackError, match="--data-file .* does not exist"):
        event_payload(InvokeInput(data_file=tmp_path / "missing.json"), None, None, notices.append)


def _exchange(raw: bytes, max_body: int = 100) -> list[Request | None]:
    left, right = socket.socketpair()
    left.sendall(raw)
    left.shutdown(socket.SHUT_WR)
    connection = Connection(right, ("test", 0), max_body)
    requests = []
    while True:
        request = connection.read_request()
        requests.append(request)
        if request is None:
            break
    left.close()
    right.close()
    return requests


def test_wire_reader_handles_keep_alive_chunked_bodies_and_oversized_bodies():
    raw = (
        b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 5\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\nhello"
        b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
        b"POST /c HTTP/1.1\r\nContent-Length: 150\r\n\r\n" + b"x" * 150 + b"GET /d HTTP/1.1\r\n\r\n"
    )
    first, second, third, fourth, end = _exchange(raw)
    assert (first.method, first.path, first.query, first.body) == ("POST", "/a", "x=1", b"hello")
    assert first.headers["x-twice"] == "1, 2"
    assert second.body == b"abcde"
    assert third.body is None  # over the limit: read and dropped, the connection stays usable
    assert (fourth.method, fourth.path, fourth.body) == ("GET", "/d", b"") and end is None


def test_wire_server_answers_and_refuses_malformed_requests():
    server = WireServer("127.0.0.1", 0, lambda request, connection: Reply(200, request.body or b"-"), 1024)
    try:
        with socket.create_connection(server.address) as client:
            client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
            answer = _read_until(client, b"hi")
            assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
            client.sendall(b"nonsense\r\n\r\n")
            assert b"400 Bad Request" in _read_until(client, b"}")
    finally:
        server.close()


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    sock.settimeout(5)
    while not data.endswith(end):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_runtime_output_keeps_every_line_of_a_chatty_writer():
    import os

    from mpack.infra.local.runtime_output import RuntimeOutput

    read_end, write_end = os.pipe()
    output = RuntimeOutput(read_end)
    writer = threading.Thread(target=lambda: [os.write(write_end, b"x" * 1023 + b"\n") for _ in range(900)])
    writer.start()
    writer.join(timeout=30)
    assert not writer.is_alive()  # never blocked on a full pipe
    text = output.take()
    assert text.count("\n") == 900 and output.take() == ""
    os.close(write_end)
    output.close()


def test_runtime_output_keeps_a_bounded_tail_of_a_flood():
    import os

    from mpack.infra.local.runtime_output import MAX_KEPT_BYTES, RuntimeOutput

    read_end, write_end = os.pipe()
    output = RuntimeOutput(read_end)
    writer = threading.Thread(target=lambda: [os.write(write_end, f"{i:099d}\n".encode()) for i in range(100_000)])  # 10 MB
    writer.start()
    writer.join(timeout=60)
    text = output.take()
    first, _, kept = text.partition("\n")
    assert "bytes of earlier output dropped" in first and len(kept.encode()) <= MAX_KEPT_BYTES
    assert kept.rstrip("\n").endswith("000099999")  # the tail, as Lambda's log tail
    os.close(write_end)
    output.close()


def test_wire_server_cuts_idle_and_trickling_connections_and_caps_their_number():
    import time

    server = WireServer("127.0.0.1", 0, lambda request, connection: Reply(200, b"ok"), 1024, idle_timeout=0.3, request_timeout=0.3, max_connections=2)
    try:
        trickling = socket.create_connection(server.address)
        trickling.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")  # the rest never comes
        idle = socket.create_connection(server.address)
        time.sleep(0.1)
        with socket.create_connection(server.address) as third:  # over the cap: answered, closed
            assert b"503 Service Unavailable" in _read_until(third, b"}")
        time.sleep(0.6)
        for sock in (trickling, idle):
            sock.settimeout(2)
            assert sock.recv(100) == b""  # closed by the server
            sock.close()
        with socket.create_connection(server.address) as fresh:  # the slots are free again
            fresh.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert _read_until(fresh, b"ok").startswith(b"HTTP/1.1 200 OK")
    finally:
        server.close()


def test_wire_server_cuts_a_connection_that_trickles_blank_lines_at_the_idle_timeout():
    """Blank lines between requests are tolerated, but they are not a request: they do not extend
    the idle time (each used to restart it, so a line every few seconds held a slot forever)."""
    import time

    server = WireServer("127.0.0.1", 0, lambda request, connection: Reply(200, b"ok"), 1024, idle_timeout=0.5)
    try:
        with socket.create_connection(server.address) as client:
            started = time.monotonic()
            closed = False
            for _ in range(20):  # 4 s at most
                try:
                    client.sendall(b"\r\n")
                except OSError:
                    closed = True
                    break
                if closed_by_server(client, 0.2):
                    closed = True
                    break
            assert closed and time.monotonic() - started < 1.5
    finally:
        server.close()


def test_wire_server_closes_a_keep_alive_connection_idle_after_its_answer():
    server = WireServer("127.0.0.1", 0, lambda request, connection: Reply(200, b"ok"), 1024, idle_timeout=0.3)
    try:
        with socket.create_connection(server.address) as client:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert _read_until(client, b"ok").startswith(b"HTTP/1.1 200 OK")
            assert closed_by_server(client, 3)
    finally:
        server.close()


def test_wire_server_drops_an_oversized_chunked_body_in_pieces():
    server = WireServer("127.0.0.1", 0, lambda request, connection: Reply(200, b"none" if request.body is None else request.body), 1024)
    try:
        with socket.create_connection(server.address) as client:
            big = b"y" * 5000  # over the limit: read in pieces and dropped, the connection stays usable
            client.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + f"{len(big):x}".encode() + b"\r\n" + big + b"\r\n0\r\n\r\n")
            assert _read_until(client, b"none").endswith(b"none")
            client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok")
            assert _read_until(client, b"ok").endswith(b"ok")
            huge = f"{100 * 1024 * 1024:x}".encode()  # 100 MB announced: not read at all, answered, closed
            client.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + huge + b"\r\n")
            answer = _read_until(client, b"none")
            assert answer.endswith(b"none") and b"Connection: close" in answer
    finally:
        server.close()


def test_retry_timers_fire_in_order_without_holding_a_thread_each():
    import time

    from mpack.infra.local.instance_pool import RetryTimers

    fired: list[str] = []
    timers = RetryTimers()
    timers.schedule(0.3, lambda: fired.append("late"))
    timers.schedule(0.05, lambda: fired.append("early"))
    before = threading.active_count()
    for _ in range(100):
        timers.schedule(60, lambda: fired.append("never"))
    assert threading.active_count() == before  # pending retries cost no threads
    time.sleep(0.6)
    timers.close()
    assert fired == ["early", "late"]


def test_an_unreachable_docker_engine_is_a_clear_error(monkeypatch, tmp_path):
    from mpack.infra.docker_engine import connect

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(MpackError, match="the Docker engine is not reachable") as caught:
        connect()
    assert "dockerd" in caught.value.hint


def test_platform_flag_maps_to_the_architecture():
    from mpack.packager.cli.build_commands import _arch_of_platform

    assert _arch_of_platform("linux/amd64", None) == "x86_64" and _arch_of_platform("linux/arm64", "arm64") == "arm64"
    with pytest.raises(MpackError, match="not a platform"):
        _arch_of_platform("windows/amd64", None)
    with pytest.raises(MpackError, match="contradicts --arch x86_64"):
        _arch_of_platform("linux/arm64", "x86_64")


def test_dockerfile_puts_layers_in_cache_friendly_order(tmp_path):
    from mpack.packager.image.build import ImageLayer, ImageRecipe, render_dockerfile

    recipe = ImageRecipe(
        base="b:1",
        layers=(ImageLayer("deps", tmp_path, "/d"), ImageLayer("model", tmp_path, "/m"), ImageLayer("app", tmp_path, "/a")),
        entrypoint=("python3", "-m", "x"),
        command=("serve",),
        labels={"k": "v"},
        expose=8080,
    )
    text = render_dockerfile(recipe)
    order = [text.index(part) for part in ("FROM b:1", "COPY deps/ /d/", "COPY model/ /m/", "COPY app/ /a/", "USER 65532:65532", 'LABEL "k"="v"', 'ENTRYPOINT ["python3", "-m", "x"]', 'CMD ["serve"]')]
    assert order == sorted(order)
