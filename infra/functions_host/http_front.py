"""The local Functions host's HTTP front end: real HTTP in, ``FunctionsHost.handle`` per request.

Bodies over the host's 210 MB request limit are refused before they are read (413); a request the
front end cannot parse gets a 400; anything else is the host's answer, byte for byte.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from mpack.infra.functions_host.app_config import MAX_REQUEST_BYTES
from mpack.infra.functions_host.host import FunctionsHost, HostRequest


class FunctionsHttpServer:
    def __init__(self, host: FunctionsHost, address: str, port: int, on_log=None) -> None:
        self.host = host
        handler = _handler_class(host, on_log or (lambda text: None))
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="functions-http")
        self._thread.start()

    @property
    def url(self) -> str:
        address, port = self._server.server_address[:2]
        return f"http://{'127.0.0.1' if address in ('0.0.0.0', '') else address}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(host: FunctionsHost, on_log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mpack-functions-host"

        def log_message(self, format, *args):  # the host logs each invocation itself
            pass

        def _answer(self) -> None:
            declared = self.headers.get("Content-Length")
            if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
                self._send(413 if declared.isdigit() else 400, {"Content-Type": "text/plain"}, b"request body too large for the Functions host (210 MB)" if declared.isdigit() else b"bad Content-Length", close=True)
                return
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = self._read_chunked()
                if body is None:
                    self._send(413, {"Content-Type": "text/plain"}, b"request body too large for the Functions host (210 MB)", close=True)
                    return
            else:
                body = self.rfile.read(int(declared)) if declared else b""
            split = urlsplit(self.path)
            query = dict(parse_qsl(split.query, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = HostRequest(self.command, split.path, query, headers, body, url=f"http://{self.headers.get('Host', 'localhost')}{self.path}")
            try:
                response = host.handle(request)
            except RuntimeError as exc:  # the host is stopping
                self._send(503, {"Content-Type": "text/plain"}, str(exc).encode(), close=True)
                return
            on_log(response.log)
            self._send(response.status, response.headers, response.body)

        def _read_chunked(self) -> bytes | None:
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        def _send(self, status: int, headers: dict, body: bytes, close: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    return Handler
