"""``mpack sync --listen PORT``: MLflow's registry webhooks wake the sync loop. A delivery only wakes it — the
registry, read again, decides what serves — since MLflow's webhooks have no queue and no redelivery.

With a secret, a delivery is accepted only when ``X-MLflow-Signature`` is ``v1,`` + base64(HMAC-SHA256(secret,
"{delivery id}.{timestamp}.{body}")) and its timestamp is recent (a replayed delivery is refused)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENTS = ("model_version_alias.created", "model_version_alias.deleted", "model_version.created")
MAX_BODY = 1 << 20
MAX_AGE_S = 300


def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def refusal(secret: str | None, headers, body: bytes, now: float) -> str | None:
    """Why a delivery is refused, or None when it is accepted."""
    if not secret:
        return None
    given, delivery, stamp = headers.get("X-MLflow-Signature"), headers.get("X-MLflow-Delivery-Id"), headers.get("X-MLflow-Timestamp")
    if not (given and delivery and stamp):
        return "missing X-MLflow-Signature, X-MLflow-Delivery-Id or X-MLflow-Timestamp"
    if not stamp.isdigit() or abs(now - int(stamp)) > MAX_AGE_S:
        return f"X-MLflow-Timestamp {stamp!r} is not within {MAX_AGE_S} s of now (a replayed delivery?)"
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if not hmac.compare_digest(given, signature(secret, delivery, stamp, text)):
        return "X-MLflow-Signature does not match (another secret?)"
    return None


class WebhookListener:
    """An HTTP server on ``host:port`` that sets ``wake`` on each accepted delivery naming one of ``models``."""

    def __init__(self, port: int, secret: str | None, models: set[str], wake: threading.Event, say, host: str = "127.0.0.1") -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a client that promises more body than it sends is dropped, not waited on forever

            def do_POST(self) -> None:
                length = self.headers.get("Content-Length") or "0"
                if not length.isdigit():
                    return self._answer(400, {"error": f"Content-Length {length[:40]!r} is not a length"})
                length = int(length)
                if self.path.split("?")[0] != "/" or length > MAX_BODY:
                    return self._answer(404 if length <= MAX_BODY else 413, {"error": "POST MLflow webhook deliveries to /"})
                body = self.rfile.read(length)
                why = refusal(listener.secret, self.headers, body, time.time())
                if why:
                    listener.say(f"webhook refused: {why}")
                    return self._answer(401, {"error": why})
                event, model = _event(body)
                if event in EVENTS and (model is None or model in listener.models):
                    listener.say(f"webhook {event} ({model or 'a model'}): syncing")
                    listener.wake.set()
                    return self._answer(200, {"accepted": event})
                return self._answer(200, {"ignored": event or "not an MLflow webhook"})

            def do_GET(self) -> None:
                self._answer(200 if self.path == "/healthz" else 404, {"listening": True})

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.secret, self.models, self.wake, self.say = secret, models, wake, say
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="mpack-sync-webhooks", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _event(body: bytes) -> tuple[str | None, str | None]:
    try:
        payload = json.loads(body)
        data = payload.get("data") or {}
        name = data.get("name")
        return f"{payload['entity']}.{payload['action']}", name if isinstance(name, str) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, None
