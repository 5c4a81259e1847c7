"""How a function instance's runtime is started: a local process today, a container later.

The Runtime API server never sees the difference: a launcher gets the environment (including
AWS_LAMBDA_RUNTIME_API) and returns a RuntimeProcess that can report its memory, its exit and its
output, and can be killed.

A local runtime is made a child subreaper (prctl, set between fork and exec so the runtime's own
start pays nothing): whatever it spawns stays in its process tree even after a ``setsid`` and a
double fork, so the memory watcher counts it and a kill takes it down with the runtime.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from mpack.infra.local.runtime_dir import BOOTSTRAP_NAME

PR_SET_CHILD_SUBREAPER = 36
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, in the parent, once
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _become_subreaper() -> None:
    """Runs in the forked child before exec (kept to one foreign call: no imports, no locks)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class RuntimeProcess(Protocol):
    output_fd: int  # the runtime's stdout and stderr, merged

    def exit_description(self) -> str | None:
        """None while running, else how it ended in Lambda's words (``exit status 1``, ``signal: killed``)."""

    def memory_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the runtime's process tree, in MB."""

    @property
    def out_of_memory(self) -> bool:
        """Whether something other than mpack (a cgroup) killed it for memory."""

    def kill(self) -> None: ...


class Launcher(Protocol):
    listen_host: str  # where the Runtime API must listen for this launcher's runtimes to reach it

    def launch(self, environment: dict[str, str], scratch: Path, memory_mb: int) -> RuntimeProcess:
        """Start the runtime; ``memory_mb`` is the function's memory size (a container's hard limit)."""


class ProcessLauncher:
    """Runs the runtime as a child process of this machine's interpreter (same Python as the bundle)."""

    listen_host = "127.0.0.1"

    def __init__(self, runtime_dir: Path, task_root: Path) -> None:
        self.runtime_dir, self.task_root = runtime_dir, task_root

    def launch(self, environment: dict[str, str], scratch: Path, memory_mb: int) -> "LocalProcess":
        """A plain process has no cgroup here: the instance's watcher enforces ``memory_mb``."""
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-u", str(self.runtime_dir / BOOTSTRAP_NAME)],
                env=environment,
                cwd=scratch,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,  # one process group: a kill takes the whole tree
                preexec_fn=_become_subreaper,  # ...and orphans of the tree stay in it
            )
        finally:
            os.close(write_end)
        return LocalProcess(process, read_end)


class LocalProcess:
    out_of_memory = False  # no cgroup: mpack's own watcher does the killing

    def __init__(self, process: subprocess.Popen, output_fd: int) -> None:
        self.process, self.output_fd = process, output_fd
        self._peak_mb = 0.0

    def exit_description(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        return signal_description(-code) if code < 0 else f"exit status {code}"

    def memory_mb(self) -> tuple[float, float]:
        current, peak = process_memory_mb(self.process.pid)
        self._peak_mb = max(self._peak_mb, current, peak)
        return current, self._peak_mb

    def kill(self) -> None:
        """Stop the whole tree first (so nothing forks or gets orphaned meanwhile), then kill it:
        descendants that left the process group with setsid are found through the tree."""
        root = self.process.pid
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in [root, *reversed(_process_tree(root)[1:])]:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            os.killpg(root, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


def signal_description(number: int) -> str:
    """How Lambda (Go) words a runtime killed by a signal: ``signal: segmentation fault``."""
    names = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted", signal.SIGTERM: "terminated", signal.SIGBUS: "bus error"}
    try:
        return f"signal: {names.get(signal.Signals(number), signal.Signals(number).name.lower())}"
    except ValueError:
        return f"signal: {number}"


def process_memory_mb(root: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process tree in MB: the root's own kernel peak plus
    what its children ever held."""
    current = peak = 0
    for pid in _process_tree(root):
        rss, hwm = _resident_kb(pid)
        current += rss
        peak += hwm
    return current / 1024, max(current, peak) / 1024


def _process_tree(root: int) -> list[int]:
    """The root pid and its descendants (through /proc's children lists)."""
    tree, index = [root], 0
    while index < len(tree):
        pid = tree[index]
        tree.extend(int(child) for child in _read_proc(f"/proc/{pid}/task/{pid}/children").split())
        index += 1
    return tree


def _resident_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; VmHWM is the kernel's own peak, so short spikes are not missed."""
    status = _read_proc(f"/proc/{pid}/status")
    return _field_kb(status, b"VmRSS:"), _field_kb(status, b"VmHWM:")


def _field_kb(status: bytes, name: bytes) -> int:
    start = status.find(name)
    if start < 0:
        return 0
    return int(status[start + len(name) : status.index(b"kB", start)])


def _read_proc(path: str) -> bytes:
    """A small /proc file in one read (this runs once per invocation: no Python file objects)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 16384)
    except OSError:
        return b""
    finally:
        os.close(fd)
