"""``mpack serve``'s front door: the Lambda Invoke API (what boto3's ``lambda.invoke`` speaks) and the
HTTP gateway, on one port, in front of the instance pool.

Invoke API: ``POST /2015-03-31/functions/{name}/invocations`` with ``X-Amz-Invocation-Type``
(RequestResponse, Event = 202 and run in the background, DryRun = 204), ``X-Amz-Log-Type: Tail``
(the last 4 KB of the log, base64, in ``X-Amz-Log-Result``), ``X-Amz-Client-Context``; errors in
the shape boto3 turns into its exceptions. Every other path is the HTTP gateway.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from urllib.parse import parse_qs, unquote

from mpack.infra.local import http_gateway
from mpack.infra.local.http_wire import Connection, Reply, Request, WireServer
from mpack.infra.local.local_lambda import LocalLambda

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
SYNC_LIMIT, ASYNC_LIMIT = 6_291_456, 262_144
LOG_TAIL_BYTES = 4096
GATEWAY_LIMIT = 10 * 1024 * 1024

IDLE_TIMEOUT_S = 60.0  # a connection that sends no request for this long (silent from the start, or
# idle between keep-alive requests) is closed, as is one whose request takes longer to arrive (slowloris)
MAX_CONNECTIONS = 256  # and so at most this many connection threads


class LocalServer:
    def __init__(
        self, function: LocalLambda, host: str = "127.0.0.1", port: int = 3000, async_retries: int = 2, async_retry_delay_s: float = 60.0, log=None, idle_timeout_s: float = IDLE_TIMEOUT_S, aliases: tuple[str, ...] = ()
    ) -> None:
        self.function = function
        self.aliases = tuple(aliases)  # qualifiers answered as $LATEST: what a client written for a deployed alias invokes
        self.async_retries, self.async_retry_delay_s, self.log = async_retries, async_retry_delay_s, log
        self._server = WireServer(
            host, port, self._route, GATEWAY_LIMIT, "mpack-serve",
            idle_timeout=idle_timeout_s, request_timeout=idle_timeout_s, max_connections=MAX_CONNECTIONS,
        )  # fmt: skip

    @property
    def url(self) -> str:
        host, port = self._server.address
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.close()
        self.function.close()

    def _route(self, request: Request, connection: Connection) -> Reply:
        match = INVOKE_PATH.match(request.path)
        if match and request.method == "POST":
            try:
                return self._invoke_api(request, unquote(match["name"]))
            except Exception as exc:  # the platform's own failure, in the shape boto3 expects
                return _aws_error(500, "ServiceException", f"mpack's local platform failed: {exc}")
        return self._gateway(request)

    # -- Invoke API ---------------------------------------------------------------------------------

    def _invoke_api(self, request: Request, name: str) -> Reply:
        config = self.function.config
        qualifier = parse_qs(request.query).get("Qualifier", [None])[0] if request.query else None
        function, _, named_qualifier = _function_name(name).partition(":")
        if function == RIE_FUNCTION_NAME:  # the name AWS's Runtime Interface Emulator documents
            function = config.name
        qualifier = qualifier or named_qualifier or "$LATEST"
        if function != config.name or qualifier not in ("$LATEST", *self.aliases):
            arn = config.arn.rsplit(":", 1)[0] + f":{function}" + (f":{qualifier}" if qualifier != "$LATEST" else "")
            return _aws_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return _aws_error(400, "InvalidParameterValueException", f"Unsupported invocation type {kind!r}")
        payload = request.body  # None: over the server's body limit
        limit = ASYNC_LIMIT if kind == "Event" else SYNC_LIMIT
        if payload is None or len(payload) > limit:
            return _aws_error(413, "RequestTooLargeException", f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
        payload = payload or b"{}"
        try:
            json.loads(payload)
        except RecursionError:
            return _aws_error(400, "InvalidRequestContentException", "Could not parse request body into json: nested too deeply")
        except ValueError as exc:
            return _aws_error(400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}")
        try:
            client_context = _client_context(request.headers.get("x-amz-client-context"))
        except ValueError as exc:
            return _aws_error(400, "InvalidRequestContentException", str(exc))
        if kind == "DryRun":
            return Reply(204)
        if kind == "Event":
            self.function.pool.invoke_async(payload, self.async_retries, self.async_retry_delay_s, self.log)
            return Reply(202, headers=[("x-amzn-RequestId", str(uuid.uuid4()))])
        result = self.function.invoke(payload, client_context)
        headers = [("X-Amz-Executed-Version", "$LATEST"), ("x-amzn-RequestId", result.request_id)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if request.headers.get("x-amz-log-type") == "Tail":
            tail = result.log.encode()[-LOG_TAIL_BYTES:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(tail).decode()))
        return Reply(200, result.payload, headers)

    # -- HTTP gateway -------------------------------------------------------------------------------

    def _gateway(self, request: Request) -> Reply:
        if request.body is None:
            return http_gateway.too_large()
        event = json.dumps(http_gateway.http_api_event(request, request.headers.get("host", "localhost"))).encode()
        if len(event) > SYNC_LIMIT:
            return http_gateway.too_large(len(request.body))
        result = self.function.invoke(event)
        if result.function_error:
            return http_gateway.function_failed()
        return http_gateway.http_reply(result.payload)


RIE_FUNCTION_NAME = "function"


def _function_name(name: str) -> str:
    """A function name, a partial ARN or a full ARN, down to NAME[:QUALIFIER]."""
    if name.startswith("arn:"):
        parts = name.split(":")
        return ":".join(parts[6:8]) if len(parts) >= 7 else name
    return name


def _client_context(header: str | None) -> str | None:
    if not header:
        return None
    try:
        text = base64.b64decode(header, validate=True).decode()
        json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("X-Amz-Client-Context must be base64-encoded JSON") from None
    return text


def _aws_error(status: int, error_type: str, message: str) -> Reply:
    body = json.dumps({"Type": "Service" if status >= 500 else "User", "message": message}).encode()
    return Reply(status, body, [("x-amzn-ErrorType", error_type), ("x-amzn-RequestId", str(uuid.uuid4()))])
