"""What every platform's sync lease shares (``infra/aws/lease.py``, ``infra/azure/lease.py``): who holds it (host,
process, a random token) and until when, when a holder counts as gone, and the renewal from a background thread
while a sync works (a build may take longer than the lease)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseHolder:
    holder: str  # host:pid:token
    until: int  # epoch seconds

    @property
    def host(self) -> str:
        return self.holder.rsplit(":", 2)[0]

    @property
    def pid(self) -> int:
        return int(self.holder.rsplit(":", 2)[1])

    def stale(self, now: float) -> bool:
        """Expired, or held by a process of this host that no longer runs."""
        return now >= self.until or (self.host == socket.gethostname() and not _alive(self.pid))


class KeptLease:
    """A platform's lease: ``ttl_s`` and ``renew()`` are its own; keeping it renewed is shared."""

    ttl_s: int

    def renew(self) -> None:
        raise NotImplementedError

    @contextmanager
    def kept(self):
        """Renew every third of the lease's time while the body runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(max(self.ttl_s / 3, 1)):
                with suppress(Exception):  # the next renewal tries again; the lease's expiry is the bound
                    self.renew()

        thread = threading.Thread(target=renew, name="mpack-lease", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
