"""The HTTP gateway of ``mpack serve`` (like ``sam local start-api``): a plain HTTP request becomes
an API Gateway HTTP API event (payload format 2.0), and the function's result becomes the HTTP
response exactly as API Gateway maps it.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from urllib.parse import parse_qsl, unquote

from mpack.infra.local.events import template
from mpack.infra.local.http_wire import Reply, Request

TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded", "application/javascript")


def http_api_event(request: Request, domain: str) -> dict:
    event = copy.deepcopy(template("apigw-http"))
    headers = {name: value for name, value in request.headers.items() if name not in ("cookie", "connection", "expect", "transfer-encoding")}
    headers["host"] = domain
    event["rawPath"], event["rawQueryString"] = request.path, request.query
    event["headers"] = headers
    cookies = [c.strip() for c in request.headers.get("cookie", "").split(";") if c.strip()]
    if cookies:
        event["cookies"] = cookies
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    if query:
        event["queryStringParameters"] = {key: ",".join(values) for key, values in query.items()}
    now = time.time()
    context = event["requestContext"]
    context["domainName"] = domain
    context["http"].update(method=request.method, path=unquote(request.path), sourceIp=request.client[0], userAgent=request.headers.get("user-agent", ""))
    context["requestId"] = base64.b64encode(secrets.token_bytes(10)).decode().rstrip("=") + "="
    context["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    context["timeEpoch"] = int(now * 1000)
    body = request.body or b""
    if _is_text(request.headers.get("content-type", "")):
        try:
            event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    if not body:
        event.pop("body")
    return event


def http_reply(payload: bytes) -> Reply:
    """API Gateway's mapping of a payload-2.0 result: a dict with statusCode is a response, anything
    else valid JSON is a 200 JSON body."""
    try:
        result = json.loads(payload)
    except ValueError:
        return bad_gateway()
    if not isinstance(result, dict) or "statusCode" not in result:
        return Reply(200, json.dumps(result).encode())
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return bad_gateway()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else (body if isinstance(body, str) else json.dumps(body)).encode()
    content_type = headers.pop("content-type", "application/json")
    extra = [(name, value) for name, value in headers.items() if name not in ("content-length", "connection", "transfer-encoding")]
    extra += [("Set-Cookie", cookie) for cookie in result.get("cookies") or ()]
    return Reply(status, data, extra, content_type)


def function_failed() -> Reply:
    return Reply(500, b'{"message":"Internal Server Error"}')


def bad_gateway() -> Reply:
    return Reply(502, b'{"message":"Internal Server Error"}')


def too_large(size: int | None = None) -> Reply:
    """The same 413 body the bundle's own protocol core and the containers answer (MLflow's shape,
    whose ``message`` is also where API Gateway puts its text)."""
    detail = f"request body is {size} bytes; the limit is {SYNC_PAYLOAD_LIMIT} (6 MB)" if size is not None else f"request body is over the limit of {SYNC_PAYLOAD_LIMIT} bytes (6 MB)"
    return Reply(413, json.dumps({"error_code": "PAYLOAD_TOO_LARGE", "message": detail}).encode())


SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024


def _is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return not lowered or any(lowered.startswith(kind) for kind in TEXT_TYPES) or lowered.endswith("+json")
