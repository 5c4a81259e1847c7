"""SnapStart on the local platform: Lambda's phases in Lambda's order.

With ``--snapstart`` the runtime starts with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``; the
real runtime client (awslambdaric) imports the handler, runs the before-snapshot hooks (in reverse
registration order) and asks ``GET /runtime/restore/next``: that is where Lambda takes the
snapshot. The platform then restores: it answers restore/next, the runtime runs the after-restore
hooks (in registration order) and asks for work, or posts ``/runtime/restore/error``. Restore and
hooks must finish within 10 s, as on Lambda.

What is not real here: the checkpoint. CRIU (Debian's ``criu``) would checkpoint and restore the
runtime process, but it cannot on every kernel (``criu check``); where it cannot, the process that
took the "snapshot" continues as the restored copy, so the Restore Duration measured is the
after-restore hooks' time plus the platform's hand-over, without a memory image to load. The
platform says which applies, once per instance.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

from mpack.infra.local.runtime_api import RuntimeApi, RuntimeOutcome

RESTORE_LIMIT_S = 10.0  # restore + after-restore hooks (Lambda's limit)
SNAPSHOT_INIT_LIMIT_S = 900.0  # a SnapStart init (at version publish) may run for 15 minutes
RESTORE_TIMEOUT = "Runtime.RestoreTimeout"


@dataclass(frozen=True)
class Restore:
    duration_ms: float  # restore/next answered -> the runtime asks for work
    error: RuntimeOutcome | None = None  # an after-restore hook failed (restore/error)
    timed_out: bool = False


def restore(api: RuntimeApi, check_health, interval_s: float) -> Restore:
    """Restore the runtime waiting on restore/next; ``check_health`` raises when it dies."""
    api.restore()
    restored_at = api.restored_at or time.perf_counter()
    deadline = restored_at + RESTORE_LIMIT_S
    while not api.wait_ready(interval_s):
        check_health()
        if time.perf_counter() >= deadline:
            return Restore(RESTORE_LIMIT_S * 1000, timed_out=True)
    ended = api.ready_at or time.perf_counter()
    return Restore((ended - restored_at) * 1000, api.restore_error)


def restore_start_line() -> str:
    python = f"python:{sys.version_info[0]}.{sys.version_info[1]}"
    return f"RESTORE_START Runtime Version: {python}.mpack-local\tRuntime Version ARN: none (local platform)"


def restore_report_line(restore: Restore) -> str:
    fields = [f"RESTORE_REPORT Restore Duration: {restore.duration_ms:.2f} ms"]
    if restore.timed_out:
        fields += ["Status: timeout"]
    elif restore.error is not None:
        fields += ["Status: error", f"Error Type: {restore.error.error_type}"]
    return "\t".join(fields)


def snapshot_line(init_ms: float) -> str:
    return f"mpack: SnapStart snapshot after init and the before-snapshot hooks ({init_ms:.2f} ms); {checkpoint_support()}"


@lru_cache(maxsize=1)
def checkpoint_support() -> str:
    """Whether CRIU could checkpoint the runtime here, in words (probed once per process)."""
    if shutil.which("criu") is None:
        return "no checkpoint: CRIU is not installed, the runtime process continues as the restored copy"
    try:
        probe = subprocess.run(["criu", "check"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no checkpoint: `criu check` failed ({error}), the runtime process continues as the restored copy"
    if probe.returncode == 0:
        return "no checkpoint: CRIU could checkpoint on this kernel, but the local platform does not use it yet; the runtime process continues as the restored copy"
    reason = next((line for line in probe.stderr.splitlines() if "Error" in line), probe.stderr.strip()[:200] or f"exit {probe.returncode}")
    return f"no checkpoint: CRIU cannot checkpoint on this kernel ({reason.strip()}), the runtime process continues as the restored copy"
