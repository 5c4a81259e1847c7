"""The HTTP container (``--target container``): the MLflow scoring protocol, the Open Inference
Protocol and the SageMaker contract on one Starlette app, with Prometheus metrics at ``/metrics``.

The model is loaded when this module is imported (once per worker process). Without batching,
predictions run inline: ONNX Runtime answers a small request in well under a millisecond, faster
than a hop to a thread pool; concurrency comes from ``MPACK_WORKERS`` processes. With
``MPACK_MAX_BATCH_SIZE`` > 1 (rows), concurrent requests are scored in threads and their
session runs coalesced (a lone request still runs inline) (``batching.py``; ``MPACK_MAX_BATCH_WAIT_MS``, default 2, waits for more
rows only under load); batch sizes and the queue depth are in ``/metrics``.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from .asgi_app import METHODS, http_error, internal_error, refused_by_size
from .batching import BatchingSession, Dispatcher, batch_settings
from .gpu_session import provider_settings
from .loader import load
from .metrics import CONTENT_TYPE, ServerMetrics
from .open_inference import OpenInference
from .protocol import Response, ScoringService


def _endpoint(path: str) -> str:
    """A bounded label for a path (never the raw path: clients choose paths)."""
    if path.startswith("/v2/"):
        return "v2-infer" if path.endswith("/infer") else "v2-metadata"
    name = path.rstrip("/").rsplit("/", 1)[-1] or "invocations"
    return name if name in ("invocations", "ping", "health", "version", "metadata") else "other"


def not_serving(path: str, reason: str) -> Response:
    """The answer of every route but liveness and /metrics while the model must not serve (a GPU
    image that would run on the CPU): 503 with the reason, in each protocol's error shape."""
    if path.startswith("/v2"):
        return Response(503, {"error": reason})
    return Response(503, {"error_code": "SERVICE_UNAVAILABLE", "message": reason})


def create_container_app(service: ScoringService, max_batch_rows: int = 0, max_batch_wait_ms: float = 2.0, unavailable: str | None = None, provider: str | None = None) -> Starlette:
    """``unavailable``: why the model must not serve (readiness fails, scoring answers 503);
    ``provider``: the execution provider the session really runs on (metadata and /metrics)."""
    metrics = ServerMetrics()
    metrics.provider = provider
    batched = max_batch_rows > 1 and hasattr(service.session, "get_inputs")  # onnxruntime sessions
    if batched:
        service.session = BatchingSession(service.session, max_batch_rows, max_batch_wait_ms, metrics.record_batch)
        metrics.queue = service.session
        dispatch = Dispatcher()
    open_inference = OpenInference(service, provider)

    async def endpoint(request: Request) -> HttpResponse:
        try:
            return await answer(request)
        except Exception:  # a bug must still get a JSON answer, never Starlette's plain-text 500
            response = internal_error()
            return HttpResponse(response.json(), status_code=response.status, headers=response.headers)

    async def answer(request: Request) -> HttpResponse:
        started = time.perf_counter()
        path = request.url.path
        if path == "/metrics":
            return HttpResponse(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})
        response = refused_by_size(request)
        if unavailable and path.rstrip("/") != "/v2/health/live":
            response = not_serving(path, unavailable)
        if response is None:
            body = await request.body()
            if open_inference.handles(path):
                call = (open_inference.handle, request.method, path, body, request.headers.get("inference-header-content-length"))
            else:
                call = (service.handle_http, request.method, path, request.headers.get("content-type"), body)
            response = await dispatch(*call) if batched else call[0](*call[1:])
        metrics.record(_endpoint(path), response.status, time.perf_counter() - started, response.rows)
        return HttpResponse(response.wire(), status_code=response.status, headers=response.headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)], exception_handlers={HTTPException: http_error})


MODEL = load()
app = create_container_app(
    ScoringService(MODEL.manifest, MODEL.session),
    *batch_settings(MODEL.manifest.get("build") or {}),
    **provider_settings(MODEL.providers, MODEL.manifest.get("build") or {}),
)
