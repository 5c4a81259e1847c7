"""One HTTP request through an ASGI app in process, as uvicorn would deliver it (the HTTP container's app)."""

from __future__ import annotations

import asyncio
import importlib
import os


def asgi_request(app, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request through ``app``."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000), "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    response_headers = {k.decode().lower(): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], response_headers, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def bundle_app(root, **environment):
    """The HTTP container's app (``mpack.handlers.container_app``) loaded on an unpacked bundle, with
    ``environment`` set while it loads (the module reads its bundle and settings at import)."""
    saved = dict(os.environ)
    os.environ.update(MPACK_BUNDLE_ROOT=str(root), **environment)
    try:
        import mpack.handlers.container_app as module

        return importlib.reload(module).app
    finally:
        os.environ.clear()
        os.environ.update(saved)
