"""One sync applies at a time per function app: a lease recorded beside the app's packages, as a blob that only one
writer can create (Put Blob with ``If-None-Match: *``) or take over (its metadata set with ``If-Match`` on the ETag
read), the same semantics as the Lambda alias of ``infra/aws/lease.py``.

The blob's metadata names its holder (host, process, a random token) and when the lease expires; a holder renews it
from a background thread while it works. A lease whose holder is a dead process on this same host, or whose time ran
out, may be taken over. Releasing writes an expired lease, conditioned on the holder's own ETag (deleting could
remove a lease another sync just took over)."""

from __future__ import annotations

import time
from contextlib import suppress

from mpack.infra.azure.session import azure_call, sdk
from mpack.infra.lease import KeptLease, LeaseHolder, holder_id

LEASE_BLOB = "mpack-sync-lease/{app}"  # beside the packages, outside their prefixes (mpack/packages/, APP/)


class AzureLease(KeptLease):
    """``acquire()`` -> None when held, else the other holder; ``renew()`` while working; ``release()`` at the end."""

    def __init__(self, container, app: str, ttl_s: int) -> None:
        self.container, self.app, self.ttl_s = container, app, ttl_s
        self.blob = container.get_blob_client(LEASE_BLOB.format(app=app))
        self.me = holder_id()
        self.etag: str | None = None

    def acquire(self) -> LeaseHolder | None:
        errors, conditions = sdk("azure.core.exceptions"), sdk("azure.core").MatchConditions
        with azure_call(f"take the sync lease on {self.app}"):
            if not self.container.exists():
                with suppress(errors.ResourceExistsError):
                    self.container.create_container()
            current = self._read()
            try:
                if current is None:
                    made = self.blob.upload_blob(b"", metadata=self._record(), overwrite=False)  # If-None-Match: *
                else:
                    holder, etag = current
                    if holder is not None and holder.holder != self.me and not holder.stale(time.time()):
                        return holder
                    made = self.blob.set_blob_metadata(self._record(), etag=etag, match_condition=conditions.IfNotModified)
            except (errors.ResourceExistsError, errors.ResourceModifiedError):  # another sync created or took it first
                taken = self._read()
                return taken[0] if taken and taken[0] else LeaseHolder("another-sync:0:unknown", int(time.time()) + self.ttl_s)
        self.etag = made.get("etag")
        return None

    def renew(self) -> None:
        """Push the expiry on; fails if another sync took the lease over (its ETag changed)."""
        conditions = sdk("azure.core").MatchConditions
        with azure_call(f"renew the sync lease on {self.app} (another sync may have taken it over)"):
            made = self.blob.set_blob_metadata(self._record(), etag=self.etag, match_condition=conditions.IfNotModified)
        self.etag = made.get("etag")

    def release(self) -> None:
        """Expire our lease, unless someone else holds it by now. Never raises: the work is done either way."""
        with suppress(Exception):  # taken over meanwhile, or storage unreachable: it expires by itself
            current = self._read()
            if current and current[0] and current[0].holder == self.me:
                self.blob.set_blob_metadata(self._record(until=0), etag=current[1], match_condition=sdk("azure.core").MatchConditions.IfNotModified)

    def _record(self, until: int | None = None) -> dict:
        return {"holder": self.me, "until": str(int(time.time()) + self.ttl_s if until is None else until)}

    def _read(self) -> tuple[LeaseHolder | None, str] | None:
        """(holder, ETag) of the lease blob, None when there is none."""
        errors = sdk("azure.core.exceptions")
        try:
            properties = self.blob.get_blob_properties()
        except errors.ResourceNotFoundError:
            return None
        metadata = properties.metadata or {}
        holder, until = metadata.get("holder"), metadata.get("until", "")
        return (LeaseHolder(holder, int(until)) if holder and until.isdigit() else None), properties.etag
