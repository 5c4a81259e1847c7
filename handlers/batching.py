"""Dynamic batching for the HTTP containers: concurrent requests' session runs coalesced into one.

A wrapper with the session's own ``run(output_names, feeds)``, so the scoring core, its checks and
its formatting are unchanged: each request's thread hands in its checked feeds. The first thread to
find no batch running leads: it takes what is queued (in arrival order, up to ``max_rows`` rows),
joins the feeds along the row axis, runs the session once, slices every output back per request and
hands the lead to the next queued request. A lone request therefore runs at once — no timer, no
thread hop — and under load requests queue while a batch runs, so batches grow with the load.
``max_wait_ms`` waits for more rows only when the previous batch held several requests (load to
wait for), so it adds nothing at low load.

Requests that cannot join (other outputs asked, other input names, dtypes or trailing shapes) start
the next batch instead; a batch whose run fails, or whose outputs do not have one row per input row,
is run again request by request, so a request that breaks the model fails alone.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class _Call:
    __slots__ = ("error", "feeds", "key", "leads", "names", "outputs", "ready", "rows")

    def __init__(self, names: list, feeds: dict, rows: int) -> None:
        self.names, self.feeds, self.rows = names, feeds, rows
        self.key = (tuple(names), tuple((name, value.dtype.str, value.shape[1:]) for name, value in sorted(feeds.items())))
        self.outputs = self.error = None
        self.ready = threading.Event()
        self.leads = False

    def answer(self):
        if self.error is not None:
            raise self.error
        return self.outputs


class BatchingSession:
    """``session`` with ``run`` batched across threads; everything else is the session's own."""

    def __init__(self, session, max_rows: int, max_wait_ms: float = 0.0, observe=None) -> None:
        self.session = session
        self.max_rows = max(1, int(max_rows))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000
        self.observe = observe  # observe(rows, requests) after each session run
        self._queue: deque[_Call] = deque()
        self._queued_rows = 0
        self._leading = False
        self._last_batch_calls = 1
        self._arrived = threading.Condition()

    def __getattr__(self, name: str):
        return getattr(self.session, name)  # get_inputs, get_providers, ...

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def run(self, output_names, feeds: dict, run_options=None):
        rows = _rows(feeds)
        if rows is None or rows >= self.max_rows or run_options is not None:
            return self._run_alone(output_names, feeds, rows or 0)
        call = _Call(list(output_names), feeds, rows)
        with self._arrived:
            self._queue.append(call)
            self._queued_rows += rows
            leads = not self._leading
            self._leading = True
            self._arrived.notify()
        if not leads:
            call.ready.wait()
            if not call.leads:
                return call.answer()
        self._lead()
        return call.answer()

    def _lead(self) -> None:
        """Run one batch from the front of the queue (this thread's own call is at its front)."""
        with self._arrived:
            if self.max_wait and self._last_batch_calls > 1:
                deadline = time.monotonic() + self.max_wait
                while self._queued_rows < self.max_rows and (left := deadline - time.monotonic()) > 0:
                    self._arrived.wait(left)
            batch = [self._queue.popleft()]
            rows = batch[0].rows
            while self._queue and self._queue[0].key == batch[0].key and rows + self._queue[0].rows <= self.max_rows:
                batch.append(self._queue.popleft())
                rows += batch[-1].rows
            self._queued_rows -= rows
            self._last_batch_calls = len(batch)
        try:
            self._run_batch(batch, rows)
        finally:
            with self._arrived:
                if self._queue:
                    self._queue[0].leads = True  # the next request in line runs the next batch
                    self._queue[0].ready.set()
                else:
                    self._leading = False
            for call in batch:
                call.ready.set()

    def _run_batch(self, batch: list[_Call], rows: int) -> None:
        if len(batch) > 1:
            try:
                joined = {name: np.concatenate([call.feeds[name] for call in batch]) for name in batch[0].feeds}
                outputs = self.session.run(batch[0].names, joined)
                if all(_splittable(output, rows) for output in outputs):
                    start = 0
                    for call in batch:
                        call.outputs = [output[start : start + call.rows] for output in outputs]
                        start += call.rows
                    self._observed(rows, len(batch))
                    return
            except Exception:  # noqa: BLE001 - one request broke the joined run: each runs alone below
                pass
        for call in batch:
            try:
                call.outputs = self._run_alone(call.names, call.feeds, call.rows)
            except Exception as error:  # noqa: BLE001 - the request's own failure, raised in its thread
                call.error = error

    def _run_alone(self, names, feeds: dict, rows: int):
        outputs = self.session.run(names, feeds)
        self._observed(rows, 1)
        return outputs

    def _observed(self, rows: int, requests: int) -> None:
        if self.observe is not None:
            self.observe(rows, requests)


def batch_settings(build: dict, environ=os.environ) -> tuple[int, float]:
    """(max rows per batch, max wait in ms): the build's (``--max-batch-size``, in the manifest),
    overridden by MPACK_MAX_BATCH_SIZE / MPACK_MAX_BATCH_WAIT_MS; rows <= 1: no batching."""
    try:
        rows = int(environ.get("MPACK_MAX_BATCH_SIZE") or build.get("max_batch_size") or 0)
        wait = float(environ.get("MPACK_MAX_BATCH_WAIT_MS") or build.get("max_batch_wait_ms", 2))
    except ValueError:
        sys.exit(f"MPACK_MAX_BATCH_SIZE={environ.get('MPACK_MAX_BATCH_SIZE')!r} / MPACK_MAX_BATCH_WAIT_MS={environ.get('MPACK_MAX_BATCH_WAIT_MS')!r}: expected a whole number of rows and milliseconds")
    if rows < 0 or not 0 <= wait <= 1000:
        sys.exit(f"MPACK_MAX_BATCH_SIZE={rows} / MPACK_MAX_BATCH_WAIT_MS={wait}: rows must be >= 0 and the wait within 0-1000 ms")
    return rows, wait


class Dispatcher:
    """Where the HTTP server scores a request: inline on the event loop when it is the only one in
    flight — no thread hop, so a lone client sees the unbatched latency — and on a worker thread
    otherwise, so that concurrent requests meet in the batching session while the loop reads more.
    Before deciding, a request yields once to the loop: requests that arrived together have all
    counted themselves by then."""

    def __init__(self, workers: int = 64) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mpack-score")
        self.in_flight = 0

    async def __call__(self, function, *args):
        self.in_flight += 1
        try:
            await asyncio.sleep(0)
            if self.in_flight == 1:
                return function(*args)
            return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        finally:
            self.in_flight -= 1


def _rows(feeds: dict) -> int | None:
    """The row count every feed shares along its first axis; None when they do not (not batchable)."""
    counts = {value.shape[0] if isinstance(value, np.ndarray) and value.ndim else None for value in feeds.values()}
    return counts.pop() if len(counts) == 1 else None


def _splittable(output, rows: int) -> bool:
    if isinstance(output, np.ndarray):
        return output.ndim > 0 and output.shape[0] == rows
    return isinstance(output, list) and len(output) == rows
