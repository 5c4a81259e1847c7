"""The ASGI app (Starlette) the container targets serve and ``--lambda-http asgi`` routes to.

Routing and the protocol live in ``ScoringService.handle_http``; this module only moves bytes.
"""

from __future__ import annotations

import logging
import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from .protocol import MAX_BODY_BYTES, Response, ScoringService, error_response, payload_too_large

log = logging.getLogger("mpack")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def refused_by_size(request: Request) -> Response | None:
    """A 413 for a body declared over the limit, answered before reading it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return error_response(payload_too_large(int(declared)))
    return None


def create_app(service: ScoringService) -> Starlette:
    async def endpoint(request: Request) -> HttpResponse:
        try:
            response = refused_by_size(request)
            if response is None:
                body = await request.body()
                response = service.handle_http(request.method, request.url.path, request.headers.get("content-type"), body)
        except Exception:  # a bug must still get a JSON answer, never a plain-text 500
            response = internal_error()
        return HttpResponse(response.json(), status_code=response.status, headers=response.headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)], exception_handlers={HTTPException: http_error})


def internal_error() -> Response:
    """The answer to a request the server itself failed on (a bug): JSON with a request id that
    names the logged traceback. Call it from inside the ``except`` block."""
    request_id = str(uuid.uuid4())
    log.exception("request %s failed", request_id)
    return Response(500, {"error_code": "INTERNAL_ERROR", "message": "the server failed to answer; see its log", "request_id": request_id})


async def http_error(request: Request, exc: HTTPException) -> HttpResponse:
    """Starlette's own refusals (a method no route takes) in the protocol's JSON shape, not its text."""
    codes = {405: "METHOD_NOT_ALLOWED", 404: "ENDPOINT_NOT_FOUND"}
    message = f"method {request.method} is not allowed here" if exc.status_code == 405 else str(exc.detail)
    body = Response(exc.status_code, {"error_code": codes.get(exc.status_code, "BAD_REQUEST"), "message": message})
    return HttpResponse(body.json(), status_code=exc.status_code, headers=body.headers)
