"""The local Functions host: routes HTTP requests to an app's functions the way Azure does.

Requests are matched against host.json's route prefix and the functions' route templates, checked
against their auth level, and sent to an instance (a worker process). An instance takes up to the
plan's HTTP concurrency at once; more requests start more instances up to ``max_instances``, then
wait. Each request is measured (duration, the instance's peak memory, the cold start on the request
that started it) and logged as the host logs it. Faults are answered, never hung on: a function
that raises is a 500; a worker that dies or goes over its memory is a 500 and is replaced; a
request over the function timeout is a 503 and its worker is restarted (as the host does); an app
that fails to load is a 503 naming the error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.functions_host.app_config import HTTP_RESPONSE_LIMIT_S, INIT_LIMIT_S, HostConfig, read_host_json, worker_environment
from mpack.infra.functions_host.keys import HostKeys
from mpack.infra.functions_host.routes import find_route, route_table
from mpack.infra.functions_host.worker_process import InitFailed, WorkerGone, WorkerProcess

JSON = {"Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True)
class HostRequest:
    method: str
    path: str  # without the query
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    url: str = ""  # the full URL as the function sees it


@dataclass(frozen=True)
class HostResponse:
    status: int
    headers: dict
    body: bytes
    function: str | None = None
    invocation_id: str | None = None
    duration_ms: float = 0.0
    cold_start_ms: float | None = None
    memory_mb: float = 0.0
    instance: int | None = None
    log: str = ""


class _Instance:
    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self.in_flight = 0
        self.index = None  # Indexed | InitFailed, once known
        self.ready = threading.Event()
        self.starting = False  # one request loads it; others wait for its index
        self.cold_start_taken = False  # the first request after the index reports the cold start


class FunctionsHost:
    def __init__(self, app_root: Path, config: HostConfig, keys: HostKeys | None = None) -> None:
        config.check()
        self.app_root, self.config = app_root, config
        self.host_json = read_host_json(app_root)
        self.keys = keys or HostKeys()
        self.functions: list[dict] | None = None
        self._routes: list = []
        self._instances: list[_Instance] = []
        self._numbers = 0
        self._changed = threading.Condition()
        self._scratch = Path(tempfile.mkdtemp(prefix="mpack-functions-"))
        self._closed = False

    @property
    def timeout_s(self) -> float:
        """The function timeout that applies to HTTP requests (host.json's, or --timeout)."""
        configured = self.config.timeout_s or self.host_json.function_timeout_s
        return min(configured, HTTP_RESPONSE_LIMIT_S) if configured else HTTP_RESPONSE_LIMIT_S

    # -- start-up -------------------------------------------------------------------------------

    def start(self) -> InitFailed | None:
        """Start one instance now and index the app (``serve`` shows the routes); the error if any."""
        instance = self._acquire()
        try:
            self._ensure_ready(instance)
            return instance.index if isinstance(instance.index, InitFailed) else None
        finally:
            self._release(instance)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            instances, self._instances = self._instances, []
            self._changed.notify_all()
        for instance in instances:
            instance.worker.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    # -- requests -------------------------------------------------------------------------------

    def handle(self, request: HostRequest) -> HostResponse:
        instance = self._acquire()
        try:
            init = self._ensure_ready(instance)
            started = time.perf_counter()  # the duration excludes the cold start, reported on its own
            if isinstance(init, InitFailed):
                self._retire(instance)
                message = f"the function app failed to start: {init.error}"
                return self._error(503, message, log=f"{init.traceback or message}\n")
            matched = find_route(self._routes, request.method, request.path)
            if matched is None:
                return HostResponse(404, {}, b"", log=f"no function matches {request.method} {request.path}\n")
            route, params = matched
            function = route.function
            if not self.keys.allows(function["auth_level"], function["name"], request.headers, request.query):
                return HostResponse(
                    401, {}, b"", function=function["name"], log=f"401 for Functions.{function['name']}: no valid key (x-functions-key header or code= query) for auth level {function['auth_level']}\n"
                )
            cold = None
            if not instance.cold_start_taken:
                instance.cold_start_taken = True
                cold = init.init_ms
            return self._invoke(instance, function, params, request, started, cold)
        finally:
            self._release(instance)

    def _invoke(self, instance: _Instance, function: dict, params: dict, request: HostRequest, started: float, cold: float | None) -> HostResponse:
        invocation = str(uuid.uuid4())
        name = f"Functions.{function['name']}"
        header = {
            "function": function["name"],
            "method": request.method,
            "url": request.url or request.path,
            "headers": request.headers,
            "params": request.query,
            "route_params": params,
        }
        worker = instance.worker
        lines = [f"Executing '{name}' (Reason='This function was programmatically called via the host APIs.', Id={invocation})"]
        status_word, response = "Succeeded", None
        try:
            answer = worker.invoke(header, request.body, started + self.timeout_s)
        except TimeoutError:
            limit = self.timeout_s
            if limit >= HTTP_RESPONSE_LIMIT_S:
                response = self._error(502, f"the function did not answer within Azure's {HTTP_RESPONSE_LIMIT_S} s HTTP limit")
            else:
                lines.append(f"Timeout value of {_timespan(limit)} exceeded by function '{name}' (Id: '{invocation}'). Initiating cancellation.")
                response = self._error(503, f"function {name} timed out after {limit:g} s; the host restarts the worker")
                self._retire(instance)
            status_word = "Failed"
        except WorkerGone as gone:
            lines.append(f"Language Worker Process exited. Pid={worker.process.pid}. {gone}")
            response = self._error(500, f"the worker process running {name} ended: {gone}")
            status_word = "Failed"
            self._retire(instance)
        else:
            if answer.ok:
                response = HostResponse(answer.status, answer.headers, answer.body)
            else:
                lines.append(f"Executed '{name}' (Failed, Id={invocation}, Duration={_ms(started):.0f}ms)")
                lines.append(f"System.Private.CoreLib: Exception while executing function: {name}. Result: Failure\nException: {answer.error}\nStack: {answer.traceback}".rstrip())
                response = HostResponse(500, {}, b"")
                status_word = None
        duration = _ms(started)
        output = worker.output.take().rstrip("\n")
        if output:
            lines.insert(1, output)
        if status_word:
            lines.append(f"Executed '{name}' ({status_word}, Id={invocation}, Duration={duration:.0f}ms)")
        memory = min(worker.peak_mb, self.config.memory_mb)
        report = f"mpack: Id={invocation} Duration: {duration:.2f} ms  Memory: {memory:.0f} MB of {self.config.memory_mb} MB  Instance: {worker.number}"
        lines.append(report + (f"  Cold start: {cold:.2f} ms" if cold is not None else ""))
        return HostResponse(response.status, response.headers, response.body, function["name"], invocation, duration, cold, memory, worker.number, "\n".join(lines) + "\n")

    def app_modules(self) -> list[str]:
        """The modules one instance's process has imported (for the build's check)."""
        instance = self._acquire()
        try:
            self._ensure_ready(instance)
            return instance.worker.modules()
        finally:
            self._release(instance)

    # -- instances ------------------------------------------------------------------------------

    def _acquire(self) -> _Instance:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the local Functions host is stopped")
                ended = [i for i in self._instances if i.ready.is_set() and not i.worker.alive()]
                for instance in ended:
                    self._instances.remove(instance)
                    instance.worker.close()
                free = [i for i in self._instances if i.in_flight < self.config.http_concurrency]
                if free:
                    chosen = min(free, key=lambda i: (not i.ready.is_set(), i.in_flight))
                    chosen.in_flight += 1
                    return chosen
                if len(self._instances) < self.config.max_instances:
                    self._numbers += 1
                    scratch = self._scratch / f"instance-{self._numbers}"
                    scratch.mkdir()
                    worker = WorkerProcess(self.app_root, worker_environment(self.config, self.app_root, scratch), self.config.memory_mb, self._numbers)
                    instance = _Instance(worker)
                    instance.in_flight = 1
                    self._instances.append(instance)
                    return instance
                self._changed.wait()

    def _release(self, instance: _Instance) -> None:
        with self._changed:
            instance.in_flight -= 1
            self._changed.notify_all()

    def _ensure_ready(self, instance: _Instance):
        if not instance.ready.is_set():
            with self._changed:
                starter = instance.index is None and not instance.starting
                if starter:
                    instance.starting = True
            if starter:
                instance.index = instance.worker.wait_indexed(INIT_LIMIT_S)
                if not isinstance(instance.index, InitFailed) and self.functions is None:
                    self.functions = list(instance.index.functions)
                    self._routes = route_table(self.host_json.route_prefix, self.functions)
                instance.ready.set()
            else:
                instance.ready.wait()
        return instance.index

    def _retire(self, instance: _Instance) -> None:
        """A failed or timed-out instance is killed; the next request starts a fresh one."""
        instance.worker.kill()
        with self._changed:
            self._changed.notify_all()

    @staticmethod
    def _error(status: int, message: str, log: str = "") -> HostResponse:
        return HostResponse(status, dict(JSON), json.dumps({"error": message}).encode(), log=log or message + "\n")


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _timespan(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
