"""One instance of the app: a Python worker process (``worker.py``) and the pipes to it.

It starts the worker with only the app's folders on the path, waits for the index (the instance's
cold start), then multiplexes invocations over the pipe: any number in flight, each answered by id.
Its memory (the process tree's resident peak) is watched while it works; a worker over the instance
memory is killed, as the platform kills it. Whatever the worker prints is the app's log.

Unlike the local Lambda platform's runtimes, the worker is not made a child subreaper: a
``preexec_fn`` forces ``fork()`` instead of ``vfork()``, which costs ~27 ms in a parent the size of a
build process, inside every cold start. Its own process group still takes the whole tree down.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.local.launcher import process_memory_mb, signal_description
from mpack.infra.local.runtime_output import RuntimeOutput

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
WATCH_INTERVAL_S = 0.005


class WorkerGone(Exception):
    """The worker process ended (crash, exit, memory kill) before it answered."""


@dataclass(frozen=True)
class Indexed:
    functions: tuple[dict, ...]
    init_ms: float  # from launch to the index (imports and the model's load included)


@dataclass(frozen=True)
class InitFailed:
    error: str
    traceback: str
    init_ms: float


@dataclass(frozen=True)
class WorkerAnswer:
    ok: bool
    status: int
    headers: dict
    body: bytes
    error: str = ""
    traceback: str = ""


class WorkerProcess:
    def __init__(self, app_root: Path, environment: dict[str, str], memory_mb: int, number: int) -> None:
        self.app_root, self.memory_mb, self.number = app_root, memory_mb, number
        self.peak_mb = 0.0
        self.killed_for_memory = False
        self._ids = itertools.count(1)
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._ready: Future = Future()
        self._write_lock = threading.Lock()
        channel_read, channel_write = os.pipe()
        output_read, output_write = os.pipe()
        self.launched = time.perf_counter()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-u", str(WORKER_SCRIPT), str(app_root)],
                env=dict(environment, MPACK_CHANNEL_FD=str(channel_write)),
                cwd=app_root,
                stdin=subprocess.PIPE,
                stdout=output_write,
                stderr=output_write,
                pass_fds=(channel_write,),
                start_new_session=True,
            )
        finally:
            os.close(channel_write)
            os.close(output_write)
        self.output = RuntimeOutput(output_read)
        self._channel = os.fdopen(channel_read, "rb")
        threading.Thread(target=self._read_answers, daemon=True, name=f"functions-worker-{number}").start()

    # -- lifecycle ------------------------------------------------------------------------------

    def wait_indexed(self, limit_s: float) -> Indexed | InitFailed:
        """The index, or why there is none (an import error, an exit, a memory kill, the time limit)."""
        deadline = time.perf_counter() + limit_s
        while not self._ready.done():
            self._watch_memory()
            if time.perf_counter() > deadline:
                self.kill()
                return InitFailed(f"the app did not finish loading within {limit_s:g} s", "", limit_s * 1000)
            try:
                self._ready.result(timeout=WATCH_INTERVAL_S * 4)
            except TimeoutError:
                continue
        return self._ready.result()

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_description(self) -> str:
        if self.killed_for_memory:
            return f"killed: over the instance memory of {self.memory_mb} MB"
        code = self.process.poll()
        if code is None:
            return "running"
        return signal_description(-code) if code < 0 else f"exit status {code}"

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        """Graceful first (close the pipe: the worker returns), then killed."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        self.output.close()

    # -- invocations ----------------------------------------------------------------------------

    def invoke(self, header: dict, body: bytes, deadline: float) -> WorkerAnswer:
        """Send one request; its answer, ``TimeoutError`` past ``deadline``, or ``WorkerGone``."""
        request_id = str(next(self._ids))
        future: Future = Future()
        with self._lock:
            self._pending[request_id] = future
        try:
            self._send(dict(header, type="invoke", id=request_id), body)
            while True:
                self._watch_memory()
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError
                try:
                    return future.result(timeout=min(WATCH_INTERVAL_S, remaining))
                except TimeoutError:
                    if not self.alive():
                        # the reader may still be delivering the last answer
                        try:
                            return future.result(timeout=0.05)
                        except TimeoutError:
                            raise WorkerGone(self.exit_description()) from None
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def modules(self) -> list[str]:
        """The modules the app's process has imported (the build checks nothing heavy was)."""
        future: Future = Future()
        with self._lock:
            self._pending["modules"] = future
        self._send({"type": "modules", "id": "modules"})
        return future.result(timeout=10)

    def _send(self, header: dict, body: bytes = b"") -> None:
        line = json.dumps(dict(header, length=len(body))).encode() + b"\n"
        try:
            with self._write_lock:
                self.process.stdin.write(line + body)
                self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise WorkerGone(self.exit_description()) from None

    def _watch_memory(self) -> None:
        if not self.alive():
            return
        _, peak = process_memory_mb(self.process.pid)
        self.peak_mb = max(self.peak_mb, peak)
        if peak > self.memory_mb:
            self.killed_for_memory = True
            self.kill()

    def _read_answers(self) -> None:
        started = self.launched
        try:
            for line in self._channel:
                header = json.loads(line)
                body = self._channel.read(header["length"]) if header.get("length") else b""
                kind = header["type"]
                if kind == "indexed":
                    self._ready.set_result(Indexed(tuple(header["functions"]), (time.perf_counter() - started) * 1000))
                elif kind == "init_error":
                    self._ready.set_result(InitFailed(header["error"], header.get("traceback", ""), (time.perf_counter() - started) * 1000))
                elif kind == "modules":
                    self._resolve("modules", header["modules"])
                else:
                    answer = WorkerAnswer(header["ok"], header.get("status", 500), header.get("headers", {}), body, header.get("error", ""), header.get("traceback", ""))
                    self._resolve(header["id"], answer)
        except (OSError, ValueError):
            pass
        if not self._ready.done():
            self.process.wait()
            self._ready.set_result(InitFailed(f"the worker process ended while loading the app ({self.exit_description()})", "", (time.perf_counter() - started) * 1000))

    def _resolve(self, request_id: str, value) -> None:
        with self._lock:
            future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(value)
