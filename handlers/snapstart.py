"""Lambda SnapStart (Python 3.12+): the hooks a bundle registers when Lambda initializes it for a
snapshot (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``); the runtime client runs them.

- before the snapshot: the model is already loaded (at import); one inference on the input example
  warms the code paths (first-call allocations, lazily built tables) so restored copies start warm;
- after each restore: the RNGs are re-seeded (every copy restored from one snapshot would otherwise
  draw the same numbers). Nothing else in the handler depends on time or identity: log records and
  metrics take the time when written, and the cold-start flag stays set until the first invocation
  after the restore, which is the restored copy's cold start.
"""

from __future__ import annotations

import os
import sys
import time

SNAP_START = "snap-start"


def register_hooks(service, example: dict | None, say=print) -> bool:
    """Register the hooks when this is a SnapStart initialization; False otherwise (nothing imported)."""
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != SNAP_START:
        return False
    from snapshot_restore_py import register_after_restore, register_before_snapshot  # Lambda's runtime provides it

    register_before_snapshot(warm_up, service, example, say)
    register_after_restore(reseed, say)
    return True


def warm_up(service, example: dict | None, say=print) -> None:
    """One inference on the input example; a failure stops the snapshot (the version would not serve)."""
    if not example:
        say("mpack SnapStart: no input example to warm up with; snapshot taken after the model load")
        return
    started = time.perf_counter()
    answer = service.score_document(example)
    if not answer.ok:
        raise RuntimeError(f"the warm-up inference on the input example failed before the snapshot: {answer.body}")
    say(f"mpack SnapStart: warmed up on the input example before the snapshot ({(time.perf_counter() - started) * 1000:.2f} ms)")


def reseed(say=print) -> None:
    import random  # here: not every bundle pays for it at import

    random.seed()  # from os.urandom: each restored copy draws its own numbers
    numpy_random = sys.modules.get("numpy.random")  # numpy 2 loads it lazily: nothing drew from it if not loaded
    if numpy_random is not None:
        numpy_random.seed()
    say("mpack SnapStart: restored; random number generators re-seeded")
