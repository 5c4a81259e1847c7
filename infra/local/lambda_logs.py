"""Lambda's platform log lines (START, END, REPORT, INIT_REPORT), in its exact format.

Billed Duration: Lambda bills in 1 ms steps and, since August 2025, bills the init phase of
on-demand functions too, so a cold start's Billed Duration includes its Init Duration.
"""

from __future__ import annotations

import math
import time


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def billed_ms(duration_ms: float, init_ms: float | None) -> int:
    return math.ceil(duration_ms + (init_ms or 0.0))


def report_line(
    request_id: str, duration_ms: float, memory_mb: int, max_used_mb: int, init_ms: float | None, status: str | None = None, error_type: str | None = None, restore_ms: float | None = None
) -> str:
    """``restore_ms``: a SnapStart restore (with its billed part, the after-restore hooks: all of
    it on the local platform, which has no memory image to load) instead of an init."""
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms, init_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_used_mb} MB",
    ]
    if init_ms is not None:
        fields.append(f"Init Duration: {init_ms:.2f} ms")
    if restore_ms is not None:
        fields += [f"Restore Duration: {restore_ms:.2f} ms", f"Billed Restore Duration: {math.ceil(restore_ms)} ms"]
    if status:
        fields.append(f"Status: {status}")
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def init_report_line(init_ms: float, phase: str, status: str, error_type: str | None = None) -> str:
    fields = [f"INIT_REPORT Init Duration: {init_ms:.2f} ms", f"Phase: {phase}", f"Status: {status}"]
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def timed_out_line(request_id: str, timeout_s: float) -> str:
    return f"{timestamp()} {request_id} Task timed out after {timeout_s:.2f} seconds"


def timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
