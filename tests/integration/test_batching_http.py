"""Dynamic batching in the HTTP container's server (uvicorn + Starlette, started as the image starts
it: `python -m mpack.handlers.container_main`) under concurrent real HTTP clients: every client gets
its own rows' answers, a bad request fails alone, and /metrics (read with prometheus_client's
parser) shows requests coalesced into fewer model runs."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.bundle_runner import unzip
from tests.helpers.container_server import container_server

pytestmark = pytest.mark.slow
CLIENTS, REQUESTS_EACH, ROWS = 16, 12, 200


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):
    root = unzip(built("models:/fraud@champion", runtime="onnx").artifact, tmp_path_factory.mktemp("batching"))
    with container_server(root, MPACK_MAX_BATCH_SIZE="4096", MPACK_MAX_BATCH_WAIT_MS="2") as port:
        yield port


def request(port: int, method: str, path: str, body: dict | None = None, connection=None) -> tuple[int, dict | str]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        raw = answer.read().decode()
        return answer.status, json.loads(raw) if raw.startswith("{") else raw
    finally:
        if own:
            connection.close()


def test_concurrent_clients_get_their_own_answers_and_a_bad_request_fails_alone(server, store):
    frame = store.frames["fraud"]
    expected = store.estimators["fraud"].predict(frame).tolist()
    failures: list[str] = []

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
        for turn in range(REQUESTS_EACH):
            start = (number * REQUESTS_EACH + turn) * 7 % (len(frame) - ROWS)
            rows = frame.iloc[start : start + ROWS]
            if number == 5 and turn == 3:  # a misspelt column: refused by name, only this request
                status, body = request(server, "POST", "/invocations", {"dataframe_split": {"columns": ["nope", *rows.columns[1:]], "data": rows.to_numpy().tolist()}}, connection)
                if status != 400 or rows.columns[0] not in body["message"]:  # the missing one named
                    failures.append(f"bad request answered {status} {body}")
                continue
            status, body = request(server, "POST", "/invocations", {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}, connection)
            if status != 200 or body["predictions"] != expected[start : start + ROWS]:
                failures.append(f"client {number} turn {turn}: {status} {str(body)[:200]}")
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert not failures, failures[:5]

    status, text = request(server, "GET", "/metrics")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {sample.name: sample.value for sample in families["mpack_batch_rows"].samples if not sample.labels.get("le")}
    good = CLIENTS * REQUESTS_EACH - 1
    assert families["mpack_batched_requests"].samples[0].value == good
    assert samples["mpack_batch_rows_sum"] == good * ROWS
    assert samples["mpack_batch_rows_count"] < good, samples  # fewer model runs than requests: coalesced
    assert families["mpack_batch_queue_depth"].samples[0].value == 0


def test_open_inference_requests_are_batched_too(server, store):
    frame = store.frames["fraud"].iloc[:3]
    status, metadata = request(server, "GET", "/v2/models/fraud")
    assert status == 200, metadata
    inputs = [{"name": column, "shape": [3], "datatype": "FP64", "data": frame[column].tolist()} for column in frame.columns]
    status, body = request(server, "POST", "/v2/models/fraud/infer", {"inputs": inputs})
    assert status == 200, body
    assert body["outputs"][0]["data"] == store.estimators["fraud"].predict(frame).tolist()
