"""The local Functions host's HTTP front end: real HTTP in, ``FunctionsHost.handle`` per request.

It runs on the local platform's own HTTP/1.1 server (``infra/local/http_wire``: keep-alive, chunked
bodies, slowloris and connection caps, bodies over the limit drained, never held). Bodies over the
host's 210 MB request limit are answered 413 as the host answers them; anything else is the host's
answer, byte for byte.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from mpack.infra.functions_host.app_config import MAX_REQUEST_BYTES
from mpack.infra.functions_host.host import FunctionsHost, HostRequest
from mpack.infra.local.http_wire import Reply, Request, WireServer

IDLE_TIMEOUT_S = 120.0  # a connection silent this long, or whose request (headers and body) takes longer, is closed
MAX_CONNECTIONS = 256


class FunctionsHttpServer:
    def __init__(self, host: FunctionsHost, address: str, port: int, on_log=None, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.host = host
        self._on_log = on_log or (lambda text: None)
        self._server = WireServer(
            address, port, self._answer, MAX_REQUEST_BYTES, "mpack-functions",
            idle_timeout=idle_timeout_s, request_timeout=idle_timeout_s, max_connections=MAX_CONNECTIONS,
        )  # fmt: skip

    @property
    def url(self) -> str:
        address, port = self._server.address
        return f"http://{'127.0.0.1' if address in ('0.0.0.0', '') else address}:{port}"

    def close(self) -> None:
        self._server.close()

    def _answer(self, request: Request, connection) -> Reply:
        if request.body is None:
            return Reply(413, b"request body too large for the Functions host (210 MB)", content_type="text/plain")
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        url = f"http://{request.headers.get('host', 'localhost')}{request.target}"
        try:
            response = self.host.handle(HostRequest(request.method, request.path, query, request.headers, request.body, url=url))
        except RuntimeError as exc:  # the host is stopping
            return Reply(503, str(exc).encode(), content_type="text/plain")
        self._on_log(response.log)
        headers = {name: value for name, value in response.headers.items() if name.lower() not in ("content-length", "transfer-encoding", "connection")}
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        extra = [(k, v) for k, v in headers.items() if k.lower() != "content-type"]
        return Reply(response.status, response.body if request.method != "HEAD" else b"", extra, content_type or "text/plain")
