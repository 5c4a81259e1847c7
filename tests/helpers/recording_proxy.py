"""A pass-through HTTP proxy on 127.0.0.1 that records what a client sent to a local server (moto's).

Used where the server accepts a parameter but does not keep it, so reading the state back cannot
show what the client asked for (moto 5 stores no SnapStart setting): the test asserts on the
recorded requests instead. Everything is forwarded unchanged; nothing else is faked.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str, bytes]] = []  # (method, path, body)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.requests.append((self.command, self.path, body))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                request = urllib.request.Request(proxy.upstream + self.path, data=body if body else None, method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        status, answer_headers, payload = answer.status, answer.headers.items(), answer.read()
                except urllib.error.HTTPError as error:
                    status, answer_headers, payload = error.code, error.headers.items(), error.read()
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def bodies(self, path_part: str) -> list[bytes]:
        return [body for _, path, body in self.requests if path_part in path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
