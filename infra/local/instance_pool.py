"""Concurrency as on Lambda: an instance serves one event at a time; a request with no idle instance
starts a new one (a cold start) up to the concurrency limit, beyond it the request waits its turn.

The most recently used idle instance is reused first (as Lambda keeps few environments hot), and a
dead instance (timeout, memory, crash) is dropped so the next request gets a fresh one.
"""

from __future__ import annotations

import heapq
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from mpack.infra.local.function_config import FunctionConfig
from mpack.infra.local.instance import FunctionInstance, InvocationResult
from mpack.infra.local.runtime_api import Invocation

InstanceFactory = Callable[[int], FunctionInstance]


class InstancePool:
    def __init__(self, config: FunctionConfig, factory: InstanceFactory, max_concurrency: int, on_result: Callable[[InvocationResult], None] | None = None) -> None:
        self.config, self._factory, self.max_concurrency = config, factory, max_concurrency
        self._on_result = on_result
        self._state = threading.Condition()
        self._idle: list[FunctionInstance] = []
        self._count = 0
        self._numbers = 0
        self._closed = False
        self.peak_instances = 0
        self.cold_starts = 0
        self._background = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="mpack-event")
        self._retries = RetryTimers()

    def invoke(self, payload: bytes, client_context: str | None = None) -> InvocationResult:
        """A synchronous (RequestResponse) invocation."""
        instance = self._acquire()
        try:
            result = instance.invoke(self._invocation(payload, client_context))
        finally:
            self._release(instance)
        if result.init_duration_ms is not None:
            with self._state:
                self.cold_starts += 1
        if self._on_result is not None:
            self._on_result(result)
        return result

    def invoke_async(self, payload: bytes, retries: int = 2, delay_s: float = 60.0, log: Callable[[str], None] | None = None) -> Future:
        """An Event invocation: accepted now, run in the background on the same instances. A failed
        attempt is retried as Lambda retries asynchronous events: ``retries`` times, waiting
        ``delay_s`` and then twice that (Lambda: 1 and 2 minutes). A waiting retry holds no worker:
        it sits in a timer heap, so other events keep running meanwhile."""

        def attempt(number: int) -> InvocationResult:
            result = self.invoke(payload)
            if result.error_type is None or number > retries or self._closed:
                return result
            wait = delay_s * 2 ** (number - 1)
            if log is not None:
                log(f"mpack: asynchronous invocation {result.request_id} failed ({result.error_type}); retry {number} of {retries} in {wait:g} s")
            self._retries.schedule(wait, lambda: self._submit(attempt, number + 1))
            return result

        return self._submit(attempt, 1)

    def _submit(self, attempt, number: int) -> Future | None:
        try:
            return self._background.submit(attempt, number)
        except RuntimeError:  # shut down meanwhile: a pending retry is dropped, as on stop
            return None

    def close(self) -> None:
        with self._state:
            self._closed = True
            idle, self._idle = self._idle, []
            self._state.notify_all()
        self._retries.close()
        self._background.shutdown(wait=False, cancel_futures=True)
        for instance in idle:
            instance.stop()

    def _acquire(self) -> FunctionInstance:
        with self._state:
            while True:
                if self._closed:
                    raise RuntimeError("the local platform is shutting down")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_concurrency:
                    self._count += 1
                    self._numbers += 1
                    self.peak_instances = max(self.peak_instances, self._count)
                    number = self._numbers
                    break
                self._state.wait()
        return self._factory(number)

    def _release(self, instance: FunctionInstance) -> None:
        with self._state:
            if instance.alive and not self._closed:
                self._idle.append(instance)
            else:
                self._count -= 1
            self._state.notify()
        if not instance.alive or self._closed:
            instance.stop()

    def _invocation(self, payload: bytes, client_context: str | None) -> Invocation:
        now = time.time()
        return Invocation(
            request_id=str(uuid.uuid4()),
            payload=payload,
            deadline_ms=int((now + self.config.timeout_s) * 1000),
            function_arn=self.config.arn,
            trace_id=f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
            client_context=client_context,
        )


class RetryTimers:
    """Callbacks due later, on one timer thread (not a sleeping worker per pending retry)."""

    def __init__(self) -> None:
        self._heap: list = []
        self._order = 0
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mpack-event-retries", daemon=True)
        self._thread.start()

    def schedule(self, delay_s: float, callback) -> None:
        with self._wake:
            self._order += 1
            heapq.heappush(self._heap, (time.monotonic() + delay_s, self._order, callback))
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._heap.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._wake.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._heap)
            callback()
