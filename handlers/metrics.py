"""Prometheus metrics for the HTTP container, in the text exposition format (0.0.4).

Deliberately not prometheus_client: importing it costs ~90 ms (it pulls in http.server, wsgiref and
threading machinery for its own exporters) on a container start of ~0.6 s, which is the product.
Counters, histograms with fixed labels and one gauge are all the container needs.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.rows = 0
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.batch_buckets = [0] * (len(BATCH_BUCKETS) + 1)  # rows per session run (dynamic batching)
        self.batch_rows = 0
        self.batch_requests = 0
        self.queue = None  # the batching session, for its queue depth
        self.provider = None  # GPU images: the execution provider the session really runs on
        self._lock = threading.Lock()  # batched requests are recorded from many threads

    def record_batch(self, rows: int, requests: int) -> None:
        with self._lock:
            self.batch_buckets[bisect_left(BATCH_BUCKETS, rows)] += 1
            self.batch_rows += rows
            self.batch_requests += requests

    def record(self, endpoint: str, status: int, seconds: float, rows: int) -> None:
        with self._lock:
            self._record(endpoint, status, seconds, rows)

    def _record(self, endpoint: str, status: int, seconds: float, rows: int) -> None:
        self.requests[(endpoint, str(status))] += 1
        if status >= 400:
            self.errors[endpoint] += 1
        self.rows += rows
        self.buckets[endpoint][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[endpoint] += seconds

    def exposition(self) -> str:
        lines = ["# HELP mpack_requests_total Requests answered, by endpoint and status", "# TYPE mpack_requests_total counter"]
        lines += [f'mpack_requests_total{{endpoint="{e}",status="{s}"}} {n}' for (e, s), n in sorted(self.requests.items())]
        lines += ["# HELP mpack_request_errors_total Requests answered with an error status", "# TYPE mpack_request_errors_total counter"]
        lines += [f'mpack_request_errors_total{{endpoint="{e}"}} {n}' for e, n in sorted(self.errors.items())]
        lines += ["# HELP mpack_predicted_rows_total Rows predicted", "# TYPE mpack_predicted_rows_total counter", f"mpack_predicted_rows_total {self.rows}"]
        lines += ["# HELP mpack_request_duration_seconds Time to answer a request", "# TYPE mpack_request_duration_seconds histogram"]
        for endpoint, counts in sorted(self.buckets.items()):
            running = 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'mpack_request_duration_seconds_bucket{{endpoint="{endpoint}",le="{le}"}} {running}')
            lines.append(f'mpack_request_duration_seconds_sum{{endpoint="{endpoint}"}} {self.sums[endpoint]}')
            lines.append(f'mpack_request_duration_seconds_count{{endpoint="{endpoint}"}} {running}')
        if self.queue is not None:
            lines += self._batching()
        if self.provider:
            lines += [
                "# HELP mpack_execution_provider_info The provider the model runs on",
                "# TYPE mpack_execution_provider_info gauge",
                f'mpack_execution_provider_info{{provider="{self.provider}"}} 1',
            ]
        return "\n".join(lines) + "\n"

    def _batching(self) -> list[str]:
        lines = ["# HELP mpack_batch_rows Rows per model run (dynamic batching)", "# TYPE mpack_batch_rows histogram"]
        running = 0
        for bound, count in zip((*BATCH_BUCKETS, float("inf")), self.batch_buckets):
            running += count
            lines.append(f'mpack_batch_rows_bucket{{le="{"+Inf" if bound == float("inf") else float(bound)}"}} {running}')
        lines += [f"mpack_batch_rows_sum {self.batch_rows}", f"mpack_batch_rows_count {running}"]
        lines += ["# HELP mpack_batched_requests_total Requests answered by model runs", "# TYPE mpack_batched_requests_total counter", f"mpack_batched_requests_total {self.batch_requests}"]
        lines += ["# HELP mpack_batch_queue_depth Requests waiting for a model run", "# TYPE mpack_batch_queue_depth gauge", f"mpack_batch_queue_depth {self.queue.queue_depth}"]
        return lines
