"""Realistic Lambda events around a request body, from the JSON templates in templates/events.

Used by the local platform (``mpack invoke --event``) and by tests of every event source.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from functools import cache
from importlib.resources import files

from mpack.infra.errors import MpackError

EVENT_KINDS = ("direct", "apigw-rest", "apigw-http", "function-url", "alb", "sqs")


@cache
def template(kind: str) -> dict:
    """The stored sample event (do not modify: deep-copy it)."""
    return json.loads(files("mpack.templates").joinpath("events", f"{kind}.json").read_text())


def wrap_event(kind: str, body, *, method: str = "POST", path: str = "/invocations", content_type: str = "application/json", base64_body: bool = False) -> dict | object:
    """The event a platform would deliver for ``body``: a JSON document (direct), the HTTP body
    (API Gateway, Function URL, ALB) or one SQS record per body in a list (sqs)."""
    if kind == "direct":
        return body if not isinstance(body, (str, bytes)) else json.loads(body)
    if kind not in EVENT_KINDS:
        raise MpackError(f"unknown event type {kind!r}", f"choose one of {', '.join(EVENT_KINDS)}")
    event = copy.deepcopy(template(kind))
    if kind == "sqs":
        record = event["Records"][0]
        bodies = body if isinstance(body, list) else [body]
        event["Records"] = [dict(copy.deepcopy(record), messageId=str(uuid.UUID(int=i + 1)), body=_text(b)) for i, b in enumerate(bodies)]
        return event
    text = _text(body)
    if base64_body:
        text = base64.b64encode(text.encode()).decode()
    event["body"], event["isBase64Encoded"] = text, base64_body
    _set_header(event, "content-type", content_type)
    if kind in ("apigw-http", "function-url"):
        event["rawPath"] = path
        event["requestContext"]["http"].update(method=method, path=path)
    else:
        event["path"], event["httpMethod"] = path, method
        if kind == "apigw-rest":
            event["requestContext"].update(httpMethod=method, path="/prod" + path)
    return event


def _text(body) -> str:
    if isinstance(body, bytes):
        return body.decode()
    return body if isinstance(body, str) else json.dumps(body)


def _set_header(event: dict, name: str, value: str | None) -> None:
    for key in [k for k in event.get("headers", {}) if k.lower() == name]:
        del event["headers"][key]
        event.get("multiValueHeaders", {}).pop(key, None)
    if value is not None:
        event["headers"][name] = value
        if "multiValueHeaders" in event:
            event["multiValueHeaders"][name] = [value]
