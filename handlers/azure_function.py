"""Azure Functions adapter (Python v2 programming model): the function app the host indexes.

The model is loaded when ``function_app.py`` is imported, which the Python worker does while it
indexes the app (the instance's cold start); every function below then answers through the one
protocol core. Routes, under host.json's ``api`` prefix:

- ``POST invocations`` (the MLflow scoring protocol) and ``GET metadata``: the bundle's auth level;
- ``GET ping``, ``GET health``, ``GET version``: anonymous, so platform and load-balancer probes work
  without a key (they reveal nothing about the model);
- ``v2`` and ``v2/{*path}``: the Open Inference Protocol (KServe V2), at the bundle's auth level.
"""

from __future__ import annotations

import logging

import azure.functions as func

from .loader import load
from .protocol import Response, ScoringService

MODEL = load()
SERVICE = ScoringService(MODEL.manifest, MODEL.session)
_open_inference = None  # made on the first /v2 request: most apps are only asked the MLflow way
AUTH_LEVEL = func.AuthLevel(MODEL.manifest.get("build", {}).get("auth", "function"))

log = logging.getLogger("mpack")


def _http(response: Response) -> func.HttpResponse:
    return func.HttpResponse(response.wire(), status_code=response.status, headers=response.headers)


def _logged(response: Response, route: str) -> Response:
    if response.status >= 500:
        log.error("prediction failed on %s: %s", route, response.json()[:2000])
    elif response.status >= 400:
        log.warning("request refused on %s (%d): %s", route, response.status, response.json()[:500])
    return response


def invocations(req: func.HttpRequest) -> func.HttpResponse:
    response = SERVICE.handle_http(req.method, "/invocations", req.headers.get("content-type"), req.get_body())
    return _http(_logged(response, "invocations"))


def probe(req: func.HttpRequest) -> func.HttpResponse:
    """ping, health, version and metadata: the protocol core answers them by their last path part."""
    return _http(SERVICE.handle_http(req.method, "/" + req.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0], None, None))


def open_inference(req: func.HttpRequest) -> func.HttpResponse:
    global _open_inference
    if _open_inference is None:
        from .open_inference import OpenInference

        _open_inference = OpenInference(SERVICE)
    path = "/v2/" + (req.route_params.get("path") or "")
    response = _open_inference.handle(req.method, path.rstrip("/"), req.get_body(), req.headers.get("inference-header-content-length"))
    return _http(_logged(response, "v2"))


def create_app(auth_level: func.AuthLevel = AUTH_LEVEL) -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=auth_level)
    anonymous = func.AuthLevel.ANONYMOUS
    routes = (
        ("invocations", "invocations", invocations, ["POST"], auth_level),
        ("metadata", "metadata", probe, ["GET"], auth_level),
        ("ping", "ping", probe, ["GET"], anonymous),
        ("health", "health", probe, ["GET"], anonymous),
        ("version", "version", probe, ["GET"], anonymous),
        ("v2_server", "v2", open_inference, ["GET"], auth_level),
        ("v2", "v2/{*path}", open_inference, ["GET", "POST"], auth_level),
    )
    for name, route, function, methods, level in routes:
        app.function_name(name)(app.route(route=route, methods=methods, auth_level=level)(_renamed(function, name)))
    return app


def _renamed(function, name: str):
    """A distinct function object per route: the decorators record the object they are given."""

    def answer(req: func.HttpRequest) -> func.HttpResponse:
        return function(req)

    answer.__name__ = answer.__qualname__ = name
    return answer


app = create_app()
