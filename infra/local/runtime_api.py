"""The Lambda Runtime API (2018-06-01) that one function instance's runtime client talks to.

Each instance gets its own listener, as each Lambda sandbox has its own endpoint: the runtime
polls ``invocation/next``, answers with ``/response`` or ``/error``, or reports ``init/error``.
Headers, status codes and the 6 MB response limit follow AWS's Runtime API.

Hot path: a ``next`` request is parked (not answered) until there is work; the invoking thread then
answers it and reads the runtime's response on the same connection itself, so a warm invocation
costs no thread hand-offs inside the emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mpack.infra.local.http_wire import Connection, Reply, Request, WireServer

PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6_291_556  # what Lambda accepts from a synchronous function
ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"


@dataclass(frozen=True)
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None


@dataclass(frozen=True)
class RuntimeOutcome:
    """What the runtime answered: the payload, and the error type when it reported an error."""

    payload: bytes
    error_type: str | None = None


class RuntimeApi:
    """One instance's Runtime API: one invocation at a time, init completion and init errors."""

    def __init__(self, host: str) -> None:
        self._state = threading.Condition()
        self._parked: Connection | None = None  # the runtime's connection, held by this API
        self._next_pending = False  # an invocation/next on it waits for an answer
        self._current: Invocation | None = None
        self._outcome: RuntimeOutcome | None = None
        self._closed = False
        self.ready_at: float | None = None  # when the runtime first asked for work: init is over
        self.init_error: RuntimeOutcome | None = None
        # SnapStart: the runtime asks restore/next once init and its before-snapshot hooks are done;
        # the answer is the restore, then its after-restore hooks run (errors: restore/error)
        self.snapshot_at: float | None = None
        self.restored_at: float | None = None
        self.restore_error: RuntimeOutcome | None = None
        self._restore: Connection | None = None
        self.delivered_at = self.answered_at = 0.0
        self._server = WireServer(host, 0, self._route, MAX_RESPONSE_BYTES, "mpack-runtime-api")

    @property
    def address(self) -> str:
        host, port = self._server.address
        return f"{host}:{port}"

    def wait_ready(self, timeout: float) -> bool:
        """True once init ended (ready for work, an init or restore error was posted, or - SnapStart
        - the runtime waits to be restored)."""
        with self._state:
            return self._state.wait_for(lambda: self.ready_at is not None or self.init_error is not None or self.restore_error is not None or self._restore is not None or self._closed, timeout)

    def restore(self) -> None:
        """Answer the runtime's restore/next: from here it runs its after-restore hooks, then asks
        for work (``ready_at``) or posts restore/error."""
        with self._state:
            connection, self._restore = self._restore, None
            self.restored_at = time.perf_counter()
        if connection is not None:
            connection.send(Reply(200, b""))
            connection.give_back()

    def exchange(self, invocation: Invocation, watch: Callable[[], None], watch_interval: float) -> RuntimeOutcome:
        """Hand ``invocation`` to the runtime and wait for its answer, calling ``watch`` (which
        raises to abandon the invocation: timeout, memory, crash) every ``watch_interval``.

        After the first invocation the runtime's connection stays with this thread's caller: its
        next ``invocation/next`` is read here, when the following invocation starts."""
        with self._state:
            while self._parked is None:
                self._state.wait(watch_interval)
                if self._parked is None:
                    watch()
            connection = self._parked
            self._current, self._outcome = invocation, None
        try:
            while not self._next_pending:
                self._serve_one(connection, watch, watch_interval)
            self._next_pending = False
            self.delivered_at = time.perf_counter()
            connection.send(_next_reply(invocation))
            while self._outcome is None:
                self._serve_one(connection, watch, watch_interval)
        except BaseException:
            self._release(connection)
            raise
        return self._outcome

    def _serve_one(self, connection: Connection, watch: Callable[[], None], watch_interval: float) -> None:
        """Answer one request of the runtime on its parked connection (or watch while it works)."""
        if self._outcome is not None:
            return
        if not connection.wait_readable(watch_interval):
            watch()
            return
        request = connection.read_request()
        if request is None:  # the runtime closed its connection: watch() finds out why
            watch()
            time.sleep(watch_interval)
            return
        reply = self._route(request, connection)
        if reply is not None:
            connection.send(reply)

    def _release(self, connection: Connection) -> None:
        """The connection goes back to its serving thread (the instance is being abandoned)."""
        with self._state:
            if self._parked is connection:
                self._parked = None
        connection.give_back()

    def close(self) -> None:
        with self._state:
            self._closed = True
            parked, self._parked = self._parked, None
            restoring, self._restore = self._restore, None
            self._state.notify_all()
        for connection in (parked, restoring):
            if connection is not None:
                connection.give_back()
        self._server.close()

    # -- requests from the runtime ---------------------------------------------------------------

    def _route(self, request: Request, connection: Connection) -> Reply | None:
        path = request.path
        if request.method == "GET" and path == f"{PREFIX}/invocation/next":
            return self._park(connection)
        if request.method == "GET" and path == f"{PREFIX}/restore/next":
            with self._state:  # held unanswered until the platform restores (restore())
                self.snapshot_at, self._restore = time.perf_counter(), connection
                self._state.notify_all()
            return None
        parts = path[len(PREFIX) + 1 :].split("/") if path.startswith(PREFIX + "/") and request.method == "POST" else []
        if parts == ["restore", "error"]:
            with self._state:
                self.restore_error = RuntimeOutcome(request.body or b"{}", request.headers.get(ERROR_TYPE_HEADER) or "Runtime.AfterRestoreError")
                self._state.notify_all()
            return _json(202, {"status": "OK"})
        if parts == ["init", "error"]:
            with self._state:
                self.init_error = RuntimeOutcome(request.body or b"{}", request.headers.get(ERROR_TYPE_HEADER) or "Runtime.Unknown")
                self._state.notify_all()
            return _json(202, {"status": "OK"})
        if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
            return _json(404, {"errorMessage": f"unknown path {request.method} {path}", "errorType": "InvalidRequest"})
        request_id, kind = parts[1], parts[2]
        if request.body is None:
            message = f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            outcome = json.dumps({"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}).encode()
            self._finish(request_id, RuntimeOutcome(outcome, "Function.ResponseSizeTooLarge"))
            return _json(413, {"errorMessage": message, "errorType": "RequestEntityTooLarge"})
        error_type = (request.headers.get(ERROR_TYPE_HEADER) or "Unhandled") if kind == "error" else None
        if not self._finish(request_id, RuntimeOutcome(request.body, error_type)):
            return _json(400, {"errorMessage": f"invalid request id {request_id}", "errorType": "InvalidRequestID"})
        return _json(202, {"status": "OK"})

    def _park(self, connection: Connection) -> Reply | None:
        """The runtime waits for work: keep its request open until an invocation answers it."""
        with self._state:
            if self._closed:
                return _json(410, {"errorMessage": "the instance is shutting down", "errorType": "Runtime.Shutdown"})
            if self.ready_at is None:
                self.ready_at = time.perf_counter()
            if self._parked is not None and self._parked is not connection:
                self._parked.give_back()  # the runtime moved to a new connection
            self._parked, self._next_pending = connection, True
            self._state.notify_all()
        return None

    def _finish(self, request_id: str, outcome: RuntimeOutcome) -> bool:
        with self._state:
            if self._current is None or self._current.request_id != request_id:
                return False
            self.answered_at = time.perf_counter()
            self._current, self._outcome = None, outcome
            self._state.notify_all()
            return True


def _json(status: int, body: dict) -> Reply:
    return Reply(status, json.dumps(body).encode())


def _next_reply(invocation: Invocation) -> Reply:
    headers = [
        ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
        ("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn),
        ("Lambda-Runtime-Trace-Id", invocation.trace_id),
    ]
    if invocation.client_context:
        headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
    if invocation.cognito_identity:
        headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
    return Reply(200, invocation.payload, headers)
