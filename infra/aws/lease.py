"""One sync applies at a time per function: a lease recorded on the function itself, as an alias that only one
writer can create (CreateAlias fails when it exists) or take over (UpdateAlias conditioned on its RevisionId).

The alias names its holder (host, process, a random token) and when the lease expires; a holder keeps it
renewed from a background thread while it works (a build may take longer than the lease). A lease whose holder
is a dead process on this same host, or whose time ran out, may be taken over. Releasing writes an expired
lease, conditioned on the holder's own RevisionId (deleting could remove a lease another sync just took over).
A function that does not exist yet has nothing to hold a lease on: there CreateFunction itself is the guard
(it fails for the second creator)."""

from __future__ import annotations

import re
import time
from contextlib import suppress

from mpack.infra.aws.session import Aws, aws_error
from mpack.infra.lease import KeptLease, LeaseHolder, holder_id

LEASE_ALIAS = "mpack-sync-lease"
RECORD = re.compile(r"^mpack-lease holder=(?P<holder>\S+) until=(?P<until>\d+)$")


class Lease(KeptLease):
    """``acquire()`` -> None when held, else the other holder; ``renew()`` while working; ``release()`` at the end."""

    def __init__(self, aws: Aws, function: str, ttl_s: int) -> None:
        self.aws, self.function, self.ttl_s = aws, function, ttl_s
        self.me = holder_id()
        self.revision: str | None = None

    def acquire(self) -> LeaseHolder | None:
        client = self.aws.lambda_
        current = self._read()
        try:
            if current is None:
                made = client.create_alias(FunctionName=self.function, Name=LEASE_ALIAS, FunctionVersion="$LATEST", Description=self._record())
            else:
                holder, revision = current
                if holder is not None and holder.holder != self.me and not holder.stale(time.time()):
                    return holder
                made = client.update_alias(FunctionName=self.function, Name=LEASE_ALIAS, Description=self._record(), RevisionId=revision)
        except (client.exceptions.ResourceConflictException, client.exceptions.PreconditionFailedException):
            taken = self._read()
            return taken[0] if taken and taken[0] else LeaseHolder("another-sync:0:unknown", int(time.time()) + self.ttl_s)
        except Exception as exc:  # noqa: BLE001 - translated with context
            raise aws_error(exc, f"take the sync lease on {self.function}") from None
        self.revision = made.get("RevisionId")
        return None

    def renew(self) -> None:
        """Push the expiry on; fails if another sync took the lease over (its RevisionId changed)."""
        try:
            made = self.aws.lambda_.update_alias(FunctionName=self.function, Name=LEASE_ALIAS, Description=self._record(), **({"RevisionId": self.revision} if self.revision else {}))
            self.revision = made.get("RevisionId")
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, f"renew the sync lease on {self.function} (another sync may have taken it over)") from None

    def release(self) -> None:
        """Expire our lease, unless someone else holds it by now. Never raises: the work is done either way."""
        current = self._read()
        if not (current and current[0] and current[0].holder == self.me):
            return
        with suppress(Exception):  # taken over meanwhile, or AWS unreachable: it expires by itself
            self.aws.lambda_.update_alias(FunctionName=self.function, Name=LEASE_ALIAS, Description=self._record(until=0), RevisionId=current[1])

    def _record(self, until: int | None = None) -> str:
        return f"mpack-lease holder={self.me} until={int(time.time()) + self.ttl_s if until is None else until}"

    def _read(self) -> tuple[LeaseHolder | None, str] | None:
        """(holder, RevisionId) of the lease alias, None when there is none."""
        client = self.aws.lambda_
        try:
            found = client.get_alias(FunctionName=self.function, Name=LEASE_ALIAS)
        except client.exceptions.ResourceNotFoundException:
            return None
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, f"read the sync lease on {self.function}") from None
        match = RECORD.match(found.get("Description") or "")
        return (LeaseHolder(match["holder"], int(match["until"])) if match else None), found.get("RevisionId")
