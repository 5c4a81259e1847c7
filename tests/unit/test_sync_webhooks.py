"""`mpack sync --listen`: deliveries signed by MLflow's own signing code wake the sync; forged, replayed or
malformed ones do not. The listener runs for real on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature as mlflow_signature
from mpack.packager.release.webhook import WebhookListener, signature

SECRET = "s3cret"


@pytest.fixture
def listener():
    wake, said = threading.Event(), []
    running = WebhookListener(0, SECRET, {"fraud"}, wake, said.append)
    yield running, wake, said
    running.close()


def post(port: int, body: bytes, headers: dict, path: str = "/") -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def signed(body: str, stamp: int | None = None, secret: str = SECRET) -> dict:
    stamp = str(stamp if stamp is not None else int(time.time()))
    return {"X-MLflow-Delivery-Id": "d-1", "X-MLflow-Timestamp": stamp, "X-MLflow-Signature": mlflow_signature(secret, "d-1", stamp, body)}


ALIAS_SET = json.dumps({"entity": "model_version_alias", "action": "created", "timestamp": "2026-12-07T00:00:00Z", "data": {"name": "fraud", "alias": "champion", "version": "3"}})


def test_our_signature_is_mlflows():
    assert signature(SECRET, "id", "123", ALIAS_SET) == mlflow_signature(SECRET, "id", "123", ALIAS_SET)


def test_a_signed_delivery_wakes_the_sync(listener):
    running, wake, said = listener
    assert post(running.port, ALIAS_SET.encode(), signed(ALIAS_SET)) == (200, {"accepted": "model_version_alias.created"})
    assert wake.is_set() and "syncing" in said[-1]


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (dict, "missing X-MLflow-Signature"),
        (lambda: signed(ALIAS_SET, secret="other"), "does not match"),
        (lambda: signed(ALIAS_SET, stamp=int(time.time()) - 3600), "not within 300 s"),
        (lambda: {**signed(ALIAS_SET), "X-MLflow-Timestamp": "soon"}, "not within 300 s"),
    ],
)
def test_forged_or_replayed_deliveries_are_refused(listener, headers, why):
    """The headers are signed when the test runs (signed at collection, they would be stale in a long suite)."""
    running, wake, _ = listener
    status, answer = post(running.port, ALIAS_SET.encode(), headers())
    assert status == 401 and why in answer["error"] and not wake.is_set()


def test_other_events_models_and_bodies_are_ignored(listener):
    running, wake, _ = listener
    other_model = ALIAS_SET.replace('"fraud"', '"churn"')
    assert post(running.port, other_model.encode(), signed(other_model))[0] == 200
    tag_set = json.dumps({"entity": "model_version_tag", "action": "set", "data": {"name": "fraud"}})
    assert post(running.port, tag_set.encode(), signed(tag_set)) == (200, {"ignored": "model_version_tag.set"})
    assert post(running.port, b"not json", signed("not json")) == (200, {"ignored": "not an MLflow webhook"})
    assert post(running.port, ALIAS_SET.encode(), signed(ALIAS_SET), path="/elsewhere")[0] == 404
    assert not wake.is_set()


def test_an_oversized_delivery_is_refused_unread(listener):
    running, _, _ = listener
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413


def test_a_bad_content_length_is_answered(listener):
    running, _, _ = listener
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", "lots")
    connection.endheaders()
    assert connection.getresponse().status == 400
