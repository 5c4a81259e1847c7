"""The scoring protocol core: parse, validate, predict, format. Framework-free and never raises.

Every platform adapter (Lambda events, ASGI, Azure) calls ``ScoringService``; nothing about the
MLflow protocol is written anywhere else. Classifiers answer labels by default and probabilities
with ``"params": {"predict_method": "predict_proba"}``.
"""

from __future__ import annotations

import json

from . import mlflow_request as requests
from .errors import INTERNAL_ERROR, RequestError
from .signature import InputSignature

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
JSON_CONTENT_TYPES = frozenset(("application/json", "application/x-json", "text/json", ""))
CSV_CONTENT_TYPES = frozenset(("text/csv", "application/csv"))
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"  # curl -d's default; accepted when the body is JSON
SCORING_PATHS = ("", "/invocations")
HEALTH_PATHS = ("/ping", "/health")
LOGGED_COLUMN_SETS = 64  # distinct ignored-column sets logged per process (clients choose them)


class Response:
    """An answer: status, JSON body, rows scored, headers; ``raw``: a body that is not JSON text
    (KServe binary tensors), the JSON ``body`` then being its header."""

    __slots__ = ("status", "body", "rows", "headers", "raw")

    def __init__(self, status: int, body: object, rows: int = 0, headers: dict | None = None, raw: bytes | None = None) -> None:
        self.status, self.body, self.rows, self.raw = status, body, rows, raw
        self.headers = {"Content-Type": "application/json"} if headers is None else headers

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body!r:.200})"

    def wire(self) -> bytes | str:
        """What goes on the wire: raw bytes when there are any, else ``json()``."""
        return self.raw if self.raw is not None else self.json()

    def json(self) -> str:
        """The JSON body, or the text itself for a text/plain answer (``/version``)."""
        if isinstance(self.body, str) and self.headers.get("Content-Type", "").startswith("text/plain"):
            return self.body
        return json.dumps(self.body, separators=(",", ":"))

    @property
    def ok(self) -> bool:
        return self.status < 400


def error_response(error: RequestError) -> Response:
    return Response(error.status, error.body())


def payload_too_large(size: int) -> RequestError:
    return RequestError(f"request body is {size} bytes; the limit is {MAX_BODY_BYTES} (6 MB)", 413, "PAYLOAD_TOO_LARGE")


class ScoringService:
    """One loaded model behind the MLflow scoring protocol."""

    def __init__(self, manifest: dict, session, feeds=None) -> None:
        """``feeds`` turns checked rows into the session's inputs: plain rows for a micro bundle
        (``row_feeds.RowFeeds``), numpy arrays for the others (``tensor_feeds.ArrayFeeds``)."""
        if feeds is None and manifest.get("micro"):
            from .row_feeds import RowFeeds

            feeds = RowFeeds
        elif feeds is None:
            from .tensor_feeds import ArrayFeeds

            feeds = ArrayFeeds
        self.manifest = manifest
        self.session = session
        self.feeding = feeds
        self.signature = InputSignature.from_manifest(manifest["signature"])
        prediction = manifest["prediction"]
        self.default_method = prediction["default"]
        self.methods = prediction["methods"]
        self.output_names = _every_output(self.methods)  # what a tensor protocol may ask for in one request
        self._ignored_sets: set[tuple] = set()  # ignored-column sets already logged
        build = {"matrix": feeds.matrix, "columns": feeds.columns}.get(self.signature.layout, feeds.tensors)
        self._feeds = lambda data: build(self.signature, data)

    # -- entry points -------------------------------------------------------------------------------

    def score_body(self, body: bytes | str | None, content_type: str | None) -> Response:
        """An HTTP-style request body with its content type."""
        try:
            size = len(body or b"")
            if size > MAX_BODY_BYTES:
                raise payload_too_large(size)
            media = (content_type or "").split(";", 1)[0].strip().lower()
            if media in CSV_CONTENT_TYPES:
                ignored: list = []
                rows = requests.csv_rows(body or b"", self.signature, ignored)
                self._note_ignored(ignored)
                return self._score(rows, {}, tabular=True)
            if media == FORM_CONTENT_TYPE and (body or b"").lstrip()[:1] in (b"{", "{"):
                media = ""
            if media not in JSON_CONTENT_TYPES:
                raise RequestError(
                    f"content type {content_type!r} is not supported; use application/json or text/csv",
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                )
            if not body:
                raise RequestError("request body is empty; expected a JSON scoring request")
            return self.score_document(requests.parse_json(body))
        except RequestError as error:
            return error_response(error)

    def score_document(self, document) -> Response:
        """An already-parsed MLflow request (a direct Lambda invocation's payload)."""
        try:
            fmt, payload, params = requests.split_document(document)
            if self.signature.layout == "tensors":
                data = requests.tensor_payloads(fmt, payload, self.signature)
                return self._score(data, params, tabular=False)
            ignored: list = []
            rows = requests.tabular_rows(fmt, payload, self.signature, ignored)
            self._note_ignored(ignored)
            return self._score(rows, params, tabular=True)
        except RequestError as error:
            return error_response(error)

    def predict_arrays(self, document, outputs: list[str] | None = None) -> tuple[list[str], list]:
        """(output names, raw output arrays) for an MLflow request, for protocols that carry typed
        tensors (Open Inference): ``outputs`` when given (any of ``output_names``), else the predict
        method's. Raises RequestError for bad requests; model failures propagate."""
        fmt, payload, params = requests.split_document(document)
        data = requests.tensor_payloads(fmt, payload, self.signature) if self.signature.layout == "tensors" else requests.tabular_rows(fmt, payload, self.signature)
        method = self._method(params)  # a bad predict_method is refused even when outputs are named
        names = outputs or method["outputs"]
        return names, self.session.run(names, self._feeds(data))

    def handle_http(self, method: str, path: str, content_type: str | None, body: bytes | str | None) -> Response:
        """Route an HTTP request: /invocations, /ping, /health, /version (plain text, as MLflow's),
        /metadata (the model and its input contract, JSON)."""
        route = path.rstrip("/")
        if route in HEALTH_PATHS or route.endswith(HEALTH_PATHS):
            return self._only(method, "GET", lambda: Response(200, {"status": "ok"}))
        if route.endswith("/version"):
            text = str(self.manifest.get("mpack_version") or "unknown")
            return self._only(method, "GET", lambda: Response(200, text, headers={"Content-Type": "text/plain; charset=utf-8"}))
        if route.endswith("/metadata"):
            return self._only(method, "GET", lambda: Response(200, self.version()))
        if route in SCORING_PATHS or route.endswith("/invocations"):
            return self._only(method, "POST", lambda: self.score_body(body, content_type))
        return error_response(RequestError(f"no endpoint at {path}; POST /invocations to score", 404, "ENDPOINT_NOT_FOUND"))

    def version(self) -> dict:
        model = self.manifest["model"]
        return {
            "mpack": self.manifest.get("mpack_version"),
            "model": {k: model.get(k) for k in ("name", "version", "source", "flavor", "sha256")},
            "signature": self.signature.describe(),
            "predict_methods": sorted(self.methods),
        }

    # -- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _only(method: str, allowed: str, respond) -> Response:
        if method.upper() != allowed and not (allowed == "GET" and method.upper() == "HEAD"):
            return error_response(RequestError(f"method {method} is not allowed here; use {allowed}", 405, "METHOD_NOT_ALLOWED"))
        return respond()

    def _method(self, params: dict) -> dict:
        unknown = [k for k in params if k != "predict_method"]
        if unknown:
            raise RequestError(f"unknown param(s) {', '.join(repr(k)[:80] for k in unknown[:10])}; supported: 'predict_method'", error_code="INVALID_PARAMETER_VALUE")
        name = params.get("predict_method", self.default_method)
        if not isinstance(name, str) or name not in self.methods:
            raise RequestError(
                f"param 'predict_method' must be one of {', '.join(sorted(self.methods))}; got {json.dumps(name)[:80]}",
                error_code="INVALID_PARAMETER_VALUE",
            )
        return self.methods[name]

    def _note_ignored(self, ignored: list) -> None:
        """One log line per distinct set of ignored columns (MLflow ignores them too)."""
        if not ignored:
            return
        key = tuple(ignored[:50])
        if key in self._ignored_sets or len(self._ignored_sets) >= LOGGED_COLUMN_SETS:
            return
        self._ignored_sets.add(key)
        shown = ", ".join(repr(c)[:60] for c in ignored[:20]) + (f" and {len(ignored) - 20} more" if len(ignored) > 20 else "")
        import logging  # only here: importing it costs ~15 ms of a cold start

        logging.getLogger("mpack").warning("ignored column(s) the model does not take: %s", shown)

    def _score(self, data, params: dict, tabular: bool) -> Response:
        method = self._method(params)
        feeds = self._feeds(data)
        rows = self.feeding.rows(feeds)
        try:
            outputs = self.session.run(method["outputs"], feeds)
        except Exception as exc:  # a real model failure: the only 500
            return Response(500, {"error_code": INTERNAL_ERROR, "message": f"model failed to predict: {exc}"[:2000]}, rows)
        return Response(200, {"predictions": self._format(method, outputs)}, rows)

    def _format(self, method: dict, outputs: list) -> object:
        squeeze = method.get("squeeze", False)
        values = [self.feeding.plain(o, squeeze) for o in outputs]
        if len(values) == 1:
            return values[0]
        return dict(zip(method["outputs"], values))


def _every_output(methods: dict) -> list[str]:
    """Every output some predict method gives (a classifier's label and probabilities), in the order
    the methods list them."""
    names: list[str] = []
    for method in methods.values():
        names += [name for name in method["outputs"] if name not in names]
    return names
