"""One function instance (a Lambda execution environment): init once, then one event at a time.

It enforces what Lambda enforces and measures what Lambda reports: the 10 s init limit (then one
more init inside the invocation, as Lambda's suppressed init), the function timeout, the memory
size (peak resident memory of the runtime's process tree; over it, the runtime is killed), crashes.
After a timeout, an out-of-memory kill or a crash the instance is dead and the pool replaces it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.local import lambda_logs, snapstart
from mpack.infra.local.function_config import FunctionConfig, runtime_environment
from mpack.infra.local.launcher import Launcher, RuntimeProcess
from mpack.infra.local.runtime_api import Invocation, RuntimeApi, RuntimeOutcome
from mpack.infra.local.runtime_output import RuntimeOutput

WATCH_INTERVAL_S = 0.005  # how often memory and liveness are checked while the function runs
TIMED_OUT = "Sandbox.Timedout"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
EXITED = "Runtime.ExitError"


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    payload: bytes
    error_type: str | None  # None: the function answered; else Lambda's error type
    duration_ms: float
    init_duration_ms: float | None  # only on a cold start
    memory_size_mb: int
    max_memory_used_mb: int
    log: str  # START ... END and REPORT, what Lambda writes to the log stream
    report: str
    instance: int

    @property
    def function_error(self) -> str | None:
        """What the Invoke API puts in X-Amz-Function-Error."""
        return "Unhandled" if self.error_type else None


@dataclass(frozen=True)
class _Init:
    duration_ms: float
    error: RuntimeOutcome | None = None  # the runtime reported an init error
    killed: "_Killed | None" = None  # the runtime died (or was killed) during init
    timed_out: bool = False
    restore: "snapstart.Restore | None" = None  # SnapStart: the restore after the snapshot

    @property
    def failure(self) -> "_Killed | None":
        if self.killed or self.error:
            return self.killed or _Killed(self.error.error_type or EXITED, "", self.error.payload)
        if self.restore and self.restore.timed_out:
            return _Killed(snapstart.RESTORE_TIMEOUT, "")
        if self.restore and self.restore.error:
            return _Killed(self.restore.error.error_type or "Runtime.AfterRestoreError", "", self.restore.error.payload)
        return None


class _Killed(Exception):
    """The platform ended the invocation: timeout, memory, a crash, or an init failure (with its payload)."""

    def __init__(self, error_type: str, reason: str, payload: bytes = b"") -> None:
        self.error_type, self.reason, self.payload = error_type, reason, payload


class FunctionInstance:
    def __init__(self, config: FunctionConfig, launcher: Launcher, task_root: Path, runtime_dir: Path, number: int) -> None:
        self.config, self.launcher, self.number = config, launcher, number
        self.task_root, self.runtime_dir = task_root, runtime_dir
        self.alive = True
        self.initialized = False
        self._api: RuntimeApi | None = None
        self._process: RuntimeProcess | None = None
        self._output: RuntimeOutput | None = None
        self._scratch: Path | None = None
        self._init_lines: list[str] = []  # what init printed and INIT_REPORT lines, logged before START
        self._restore_ms: float | None = None  # SnapStart: the restore, reported by the next REPORT

    def invoke(self, invocation: Invocation) -> InvocationResult:
        init_ms = None
        suppressed_from = None  # set when the init had to run again inside this invocation
        if not self.initialized:
            init = self._initialize(self.config.init_limit_s)
            if init.timed_out:  # Lambda inits again inside the invocation, under its timeout
                self._init_lines.append(lambda_logs.init_report_line(init.duration_ms, "init", "timeout"))
                suppressed_from = time.perf_counter()
                init = self._initialize(self.config.timeout_s)
            else:
                init_ms = init.duration_ms
            if init.timed_out:
                return self._finish(invocation, suppressed_from, None, _Killed(TIMED_OUT, ""))
            if init.restore is not None:  # SnapStart: the invocation reports the restore, not the init
                init_ms, self._restore_ms = None, init.restore.duration_ms
            failed = init.failure
            if failed:
                phase = "init" if suppressed_from is None else "invoke"
                self._init_lines.append(lambda_logs.init_report_line(init.duration_ms, phase, "error", failed.error_type))
                return self._finish(invocation, suppressed_from or time.perf_counter(), init_ms, failed)
            self.initialized = True
        assert self._api is not None
        started = suppressed_from or time.perf_counter()
        deadline = started + self.config.timeout_s

        def watch() -> None:
            self._check_health()
            if time.perf_counter() >= deadline:
                raise _Killed(TIMED_OUT, "")

        try:
            outcome = self._api.exchange(invocation, watch, WATCH_INTERVAL_S)
            peak = self._check_memory()
        except _Killed as killed:
            return self._finish(invocation, started, init_ms, killed)
        return self._finish(invocation, suppressed_from or self._api.delivered_at, init_ms, outcome, peak)

    def stop(self) -> None:
        self.alive = False
        if self._process is not None:
            self._process.kill()
        if self._api is not None:
            self._api.close()
        if self._output is not None:
            self._output.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._api = self._process = self._output = self._scratch = None

    # -- phases -------------------------------------------------------------------------------

    def _initialize(self, limit_s: float) -> _Init:
        self.stop()
        self.alive = True
        self._scratch = Path(tempfile.mkdtemp(prefix=f"mpack-tmp-{self.number}-"))
        self._api = RuntimeApi(self.launcher.listen_host)
        environment = runtime_environment(self.config, self.task_root, self.runtime_dir, self._api.address, self._scratch)
        launched = time.perf_counter()
        self._process = self.launcher.launch(environment, self._scratch, self.config.memory_mb)
        self._output = RuntimeOutput(self._process.output_fd)
        deadline = launched + (max(limit_s, snapstart.SNAPSHOT_INIT_LIMIT_S) if self.config.snapstart else limit_s)
        while not self._api.wait_ready(WATCH_INTERVAL_S * 4):
            try:
                self._check_health()
            except _Killed as killed:  # exited or over the memory size during init
                self._collect_init_output()
                return _Init(_ms(launched), killed=killed)
            if time.perf_counter() >= deadline:
                self._collect_init_output()
                self._process.kill()
                return _Init(limit_s * 1000, timed_out=True)
        duration = ((self._api.ready_at or self._api.snapshot_at or time.perf_counter()) - launched) * 1000
        self._collect_init_output()
        if self._api.init_error is not None:
            return _Init(duration, self._api.init_error)
        if self._api.snapshot_at is not None and self._api.ready_at is None:
            return self._restore(duration)
        return _Init(duration)

    def _restore(self, init_ms: float) -> _Init:
        """SnapStart: the snapshot is taken (init and before-snapshot hooks done); restore it."""
        self._init_lines += [snapstart.snapshot_line(init_ms), snapstart.restore_start_line()]
        try:
            restored = snapstart.restore(self._api, self._check_health, WATCH_INTERVAL_S * 4)
        except _Killed as killed:
            self._collect_init_output()
            return _Init(init_ms, killed=killed)
        self._collect_init_output()  # the after-restore hooks' output
        self._init_lines.append(snapstart.restore_report_line(restored))
        return _Init(init_ms, restore=restored)

    def _check_health(self) -> None:
        assert self._process is not None
        self._check_memory()
        ended = self._process.exit_description()
        if ended is not None:
            raise _Killed(OUT_OF_MEMORY if self._process.out_of_memory else EXITED, ended)

    def _check_memory(self) -> float:
        """The peak so far; over the memory size, the runtime is killed as Lambda kills it."""
        assert self._process is not None
        _, peak = self._process.memory_mb()
        if peak > self.config.memory_mb:
            self._process.kill()
            raise _Killed(OUT_OF_MEMORY, "signal: killed")
        return peak

    def _collect_init_output(self) -> None:
        if self._output is not None:
            self._init_lines.extend(self._output.take().splitlines())

    # -- the result ---------------------------------------------------------------------------

    def _finish(self, invocation: Invocation, measured_from: float, init_ms: float | None, ended: RuntimeOutcome | _Killed, peak: float | None = None) -> InvocationResult:
        """The result and Lambda's log lines; a platform failure (killed, init error) ends the instance."""
        request_id = invocation.request_id
        answered_at = self._api.answered_at if isinstance(ended, RuntimeOutcome) and self._api is not None else 0.0
        duration = ((answered_at or time.perf_counter()) - measured_from) * 1000
        if peak is None:
            peak = self._process.memory_mb()[1] if self._process is not None else 0
        peak = round(peak)
        output = self._output.take() if self._output is not None else ""
        status = None
        if isinstance(ended, _Killed):
            if ended.error_type == OUT_OF_MEMORY:
                peak = self.config.memory_mb
            if ended.error_type == TIMED_OUT:
                output += lambda_logs.timed_out_line(request_id, self.config.timeout_s) + "\n"
            status = "timeout" if ended.error_type == TIMED_OUT else "error"
            payload, error_type = ended.payload or self._killed_payload(request_id, ended), ended.error_type
            self.stop()
        else:
            payload, error_type = ended.payload, ended.error_type
        peak = min(peak, self.config.memory_mb)
        restore_ms, self._restore_ms = self._restore_ms, None
        report = lambda_logs.report_line(request_id, duration, self.config.memory_mb, peak, init_ms, status, error_type if status == "error" else None, restore_ms)
        prelude, self._init_lines = self._init_lines, []
        lines = [*prelude, lambda_logs.start_line(request_id), *output.splitlines(), lambda_logs.end_line(request_id), report]
        return InvocationResult(request_id, payload, error_type, duration, init_ms, self.config.memory_mb, peak, "\n".join(lines) + "\n", report, self.number)

    def _killed_payload(self, request_id: str, killed: _Killed) -> bytes:
        if killed.error_type == TIMED_OUT:
            return _error_body(f"RequestId: {request_id} Error: Task timed out after {self.config.timeout_s:.2f} seconds", TIMED_OUT)
        return _error_body(f"RequestId: {request_id} Error: Runtime exited with error: {killed.reason}", killed.error_type)


def _error_body(message: str, error_type: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
