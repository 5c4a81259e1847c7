"""A small threaded HTTP/1.1 server for the emulator's hot path (one thread per keep-alive connection).

Deliberately not ``http.server``: its header parsing (the email package) and unbuffered writes cost
about 0.3 ms per request and stall the other threads of this process on the GIL, which alone would
spend the emulator's per-invocation overhead budget (1 ms). This parses the request line and headers
by hand, reads Content-Length or chunked bodies, answers ``Expect: 100-continue`` and writes each
response in one send. A handler may also keep a connection for a while and talk on it itself (the
Runtime API does, so the invoking thread answers ``invocation/next`` without a thread hand-off).

Hardened for a port anyone on the machine can reach: an idle connection and a request that trickles
in (slowloris) are cut by timeouts, connections (and so threads) are capped, and a body over the
limit is read in pieces and dropped, never held whole: memory stays bounded whatever a client sends.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEADER_LINE = 65536
MAX_HEADERS = 200
DRAIN_PIECE = 1 << 20
DRAIN_LIMIT_FACTOR = 8  # bodies over 8x the limit are not drained: answered, then the connection closed


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes | None  # None when it was over the server's body limit (read and dropped)
    client: tuple[str, int]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


Handler = Callable[[Request, "Connection"], "Reply | None"]  # None: the handler keeps the connection


class BadRequest(Exception):
    pass


class Connection:
    """One client connection with its own read buffer (so a caller can tell whether a request is
    already waiting without blocking). A handler that returns None holds the connection until
    ``give_back()``; the serving thread then goes on reading from it."""

    def __init__(self, sock: socket.socket, client: tuple[str, int], max_body: int, idle_timeout: float | None = None, request_timeout: float | None = None) -> None:
        self.sock, self.client, self.max_body = sock, client, max_body
        self.idle_timeout, self.request_timeout = idle_timeout, request_timeout
        self.close_after_reply = False  # set when the rest of a huge body was not read
        self._deadline: float | None = None
        self._buffer = bytearray()
        self._returned = threading.Event()

    def send(self, reply: Reply, close: bool = False) -> None:
        self.sock.sendall(_encode(reply, close))

    def wait_readable(self, timeout: float) -> bool:
        return bool(self._buffer) or bool(select.select([self.sock], [], [], timeout)[0])

    def give_back(self) -> None:
        self._returned.set()

    def wait_given_back(self) -> None:
        self._returned.wait()
        self._returned.clear()

    def read_request(self) -> Request | None:
        """The next request, or None when the peer closed the connection. TimeoutError when no
        request starts within ``idle_timeout`` (counted from the connection's opening or the last
        reply, whatever trickles in meanwhile) or one takes longer than ``request_timeout`` to arrive."""
        self._limit_reads(self.idle_timeout)
        line = self._readline()
        while line in (b"\r\n", b"\n"):  # tolerated between requests, without extending the idle time
            line = self._readline()
        if not line:
            return None
        self._limit_reads(self.request_timeout)
        try:
            method, target, _version = line.decode("latin-1").split()
        except ValueError:
            raise BadRequest("malformed request line") from None
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = self._readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise BadRequest("malformed header line")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        else:
            raise BadRequest("too many headers")
        if headers.get("expect", "").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._read_body(headers)
        self._deadline = None
        self.sock.settimeout(None)  # handlers talk on the connection at their own pace
        return Request(method, target, headers, body, self.client)

    def _limit_reads(self, timeout: float | None) -> None:
        """Reads from now on must be done within ``timeout`` seconds in all (None: no limit)."""
        self._deadline = None if timeout is None else time.monotonic() + timeout
        if timeout is None:
            self.sock.settimeout(None)

    def _read_body(self, headers: dict[str, str]) -> bytes | None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise BadRequest("malformed Content-Length") from None
        if length < 0:
            raise BadRequest("malformed Content-Length")
        if length <= self.max_body:
            return self._read(length)
        if length > self.max_body * DRAIN_LIMIT_FACTOR:
            self.close_after_reply = True  # not worth reading: answer, then hang up
            return None
        self._discard(length)  # drop it in pieces, keeping the connection usable
        return None

    def _read_chunked(self) -> bytes | None:
        chunks, size = [], 0
        while True:
            try:
                length = int(self._readline().split(b";")[0], 16)
            except ValueError:
                raise BadRequest("malformed chunked body") from None
            if length < 0:
                raise BadRequest("malformed chunked body")
            if length == 0:
                break
            if size + length <= self.max_body:
                chunks.append(self._read(length))
            else:
                chunks = []  # over the limit: nothing of it is kept
                if size + length > self.max_body * DRAIN_LIMIT_FACTOR:
                    self.close_after_reply = True
                    return None
                self._discard(length)
            size += length
            self._readline()
        while self._readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks) if size <= self.max_body else None

    def _discard(self, size: int) -> None:
        while size > 0:
            size -= len(self._read(min(size, DRAIN_PIECE)))

    def _fill(self) -> bool:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request not received in time")
            self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _readline(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_HEADER_LINE:
                raise BadRequest("header line too long")
            if not self._fill():
                line, self._buffer = bytes(self._buffer), bytearray()
                return line
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise ConnectionError("connection closed in the middle of a body")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class WireServer:
    """Serves ``handler`` on (host, port) until close(); port 0 picks a free one."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        max_body: int,
        name: str = "mpack-http",
        *,
        idle_timeout: float | None = None,
        request_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.handler, self.max_body, self.name = handler, max_body, name
        self.idle_timeout, self.request_timeout, self.max_connections = idle_timeout, request_timeout, max_connections
        self._listener = socket.create_server((host, port), backlog=128)
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self._listener.getsockname()[:2]

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, client = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                full = self.max_connections is not None and len(self._connections) >= self.max_connections
                if not full:
                    self._connections.add(sock)
            if full:  # answered and closed on the accepting thread: no thread per refused client
                _refuse(sock, self.max_connections)
                continue
            connection = Connection(sock, client, self.max_body, self.idle_timeout, self.request_timeout)
            threading.Thread(target=self._serve, args=(connection,), name=f"{self.name}-conn", daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        try:
            while not self._closed:
                try:
                    request = connection.read_request()
                except BadRequest as bad:
                    connection.send(Reply(400, json.dumps({"message": str(bad)}).encode()), close=True)
                    return
                if request is None:
                    return
                try:
                    reply = self.handler(request, connection)
                except Exception as exc:  # a bug or a shutdown must not leave the client without an answer
                    reply = Reply(500, json.dumps({"message": f"internal error: {exc}"}).encode())
                if reply is None:
                    connection.wait_given_back()
                    continue
                keep_alive = request.headers.get("connection", "").lower() != "close" and not connection.close_after_reply
                connection.send(reply, close=not keep_alive)
                if not keep_alive:
                    return
        except OSError:  # includes ConnectionError: the peer went away
            return
        finally:
            with self._lock:
                self._connections.discard(connection.sock)
            connection.sock.close()


def _refuse(sock: socket.socket, limit: int) -> None:
    body = json.dumps({"message": f"too many connections (the limit is {limit}); try again"}).encode()
    try:
        sock.settimeout(1.0)
        sock.sendall(_encode(Reply(503, body, [("Retry-After", "1")]), close=True))
    except OSError:
        pass
    finally:
        sock.close()


def _encode(reply: Reply, close: bool) -> bytes:
    try:
        reason = HTTPStatus(reply.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {reply.status} {reason}", f"Content-Type: {reply.content_type}", f"Content-Length: {len(reply.body)}"]
    lines.extend(f"{name}: {value}" for name, value in reply.headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + reply.body
