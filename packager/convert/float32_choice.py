"""Whether the float32 variant ships: it passed the parity gate (``check_parity`` with
``near_ties=tolerance``: values within the tolerance, labels equal except where the original's top
two probabilities are within it — the fp16 rule) and it is faster beyond noise, as measured by the
build through the bundle's own protocol core (packager/stages/choose.py: one row and 1,000 rows,
warm, in turns)."""

from __future__ import annotations

from dataclasses import dataclass

BATCH_ROWS = 1000


@dataclass(frozen=True)
class Latency:
    one_row_us: float  # microseconds to score 1 row
    batch_us: float  # microseconds to score BATCH_ROWS rows


def prefer_float32(passed: bool, float64: Latency, float32: Latency, margin: float = 0.05) -> bool:
    """float32 ships when it passed the parity gate, is faster by more than ``margin`` (noise) on
    one row or on a batch, and slower by more than ``margin`` on neither."""
    if not passed:
        return False
    ratios = (float32.one_row_us / float64.one_row_us, float32.batch_us / float64.batch_us)
    return min(ratios) < 1 - margin and max(ratios) <= 1 + margin
