"""Write-back: each model version says, in the registry, where a release serves it, since when, with what share,
or why it was refused — ``mpack.<release>.status`` and friends — so the MLflow UI shows the deployment state.
A ``failed`` status is also the record that keeps a sync from retrying that version (until ``--retry``)."""

from __future__ import annotations

import time

FIELDS = ("status", "share", "since", "where", "reason", "served_by")
SERVED_BEFORE = ("serving", "retired")  # its recorded platform version passed a smoke test and served all traffic


def tag_key(release: str, field: str) -> str:
    return f"mpack.{release}.{field}"


def status_tags(release: str, status: str, where: str, share: float | None = None, reason: str | None = None, since: str | None = None, served_by: str | None = None) -> dict[str, str | None]:
    """The tags of one status; fields that do not apply are deleted (None). ``served_by``: the platform's version
    that served this model version fully (kept when it retires: what may serve it again without a build)."""
    values = {"status": status, "share": f"{share:g}" if share is not None else None, "since": since or now_text(), "where": where, "reason": reason[:4000] if reason else None, "served_by": served_by}
    return {tag_key(release, name): value for name, value in values.items()}


def read_status(release: str, tags: dict) -> dict:
    return {name: tags.get(tag_key(release, name)) for name in FIELDS}


def differs(release: str, current: dict, wanted: dict) -> bool:
    """Whether writing ``wanted`` changes anything but the time stamp."""
    since = tag_key(release, "since")
    return any(current.get(key) != value for key, value in wanted.items() if key != since)


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
