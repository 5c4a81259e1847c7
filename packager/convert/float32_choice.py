"""Whether the float32 variant ships: it must pass the parity gate and be faster, measured.

Passing is the parity gate's (``check_parity`` with ``near_ties=tolerance``: values within the
tolerance, labels equal except where the original's top two probabilities are within it — the fp16
rule). Faster is measured here, on this machine's onnxruntime, as the bundle runs the graph
(``create_session``: optimizations off, the graph optimized at build time, one intra-op thread by
default): one row (a Lambda request) and 1,000 rows (a batch), each the median of warm runs.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

BATCH_ROWS = 1000


@dataclass(frozen=True)
class Latency:
    one_row_us: float  # microseconds to score 1 row
    batch_us: float  # microseconds to score BATCH_ROWS rows

    def to_dict(self) -> dict:
        return {"one_row_us": round(self.one_row_us, 1), f"rows_{BATCH_ROWS}_us": round(self.batch_us, 1)}


def measure_latency(onnx_bytes: bytes, feeds: dict, threads: int = 1, samples: int = 7) -> Latency:
    """Median microseconds per run of the graph on 1 row and on BATCH_ROWS rows of ``feeds``
    ({input name: rows}, repeated to BATCH_ROWS rows where fewer), after warm-up runs."""
    return measure_latencies([onnx_bytes], feeds, threads, samples)[0]


def measure_latencies(graphs: list[bytes], feeds: dict, threads: int = 1, samples: int = 7) -> list[Latency]:
    """``measure_latency`` of each graph, their samples taken in turn: a machine busy with other
    work slows each graph alike, instead of whichever ran during the busy second."""
    from mpack.handlers.loader import create_session

    sessions = [create_session(graph, threads) for graph in graphs]
    one = {name: np.asarray(rows)[:1] for name, rows in feeds.items()}
    batch = {name: _rows(np.asarray(rows), BATCH_ROWS) for name, rows in feeds.items()}
    one_row = _median_us(sessions, one, samples, calls=50)
    batched = _median_us(sessions, batch, samples, calls=3)
    return [Latency(a, b) for a, b in zip(one_row, batched)]


def prefer_float32(passed: bool, float64: Latency, float32: Latency, margin: float = 0.05) -> bool:
    """float32 ships when it passed the parity gate, is faster by more than ``margin`` (noise) on
    one row or on a batch, and slower by more than ``margin`` on neither."""
    if not passed:
        return False
    ratios = (float32.one_row_us / float64.one_row_us, float32.batch_us / float64.batch_us)
    return min(ratios) < 1 - margin and max(ratios) <= 1 + margin


def _rows(values: np.ndarray, count: int) -> np.ndarray:
    repeats = -(-count // len(values))
    return np.concatenate([values] * repeats)[:count] if repeats > 1 else values[:count]


def _median_us(sessions: list, feeds: dict, samples: int, calls: int) -> list[float]:
    """Per session, the median over ``samples`` of the mean time of ``calls`` runs (one run of a row
    takes microseconds: a mean over several is steadier than the timer's resolution)."""
    for session in sessions:
        for _ in range(3):
            session.run(None, feeds)
    timings: list[list[float]] = [[] for _ in sessions]
    for _ in range(samples):
        for session, taken in zip(sessions, timings):
            start = time.perf_counter_ns()
            for _ in range(calls):
                session.run(None, feeds)
            taken.append((time.perf_counter_ns() - start) / calls / 1000)
    return [statistics.median(taken) for taken in timings]
