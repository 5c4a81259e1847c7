"""From (the version the registry names, what the platform serves, the registry's records) to the steps that
converge one to the other — or none. Pure: everything it needs is read before, so ``--plan`` shows exactly
what a sync would apply.

Two rules keep a version that never passed its checks from taking traffic: a published version serves again
without a build only if the registry records that this very platform version served it fully before; and a
canary that failed its gates is recorded as failed before it is dropped, so a sync killed in between drops it
again instead of judging it anew."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mpack.infra.plan import Plan
from mpack.packager.release.config import Release
from mpack.packager.release.serving import Serving
from mpack.packager.release.steps import DEPLOYED, BuildVersion, DeployVersion, DropCanary, Promote, RecordStatus, ServeAgain
from mpack.packager.release.tags import SERVED_BEFORE, differs, read_status, status_tags


@dataclass(frozen=True)
class ReleasePlan(Plan):
    release: str = ""
    wanted: str | None = None  # the model version the registry names
    outcome: str = "unchanged"  # unchanged | recorded | deployed | canary | baking | promoted | rolled back | canary dropped | served again | skipped | alias missing
    reason: str = ""  # why, in words
    warnings: tuple = field(default_factory=tuple)
    bake_left_s: int | None = None  # a baking canary: seconds until its verdict
    failed: bool = False  # the wanted version was refused by this plan (its canary's gates)
    new_version: bool = True  # the wanted version is not what already serves (a failure is then its own)
    was_serving: str = "what served before"

    def serving(self) -> str:
        return self.was_serving


def decide(release: Release, wanted: str | None, serving: Serving, tags_of: Callable[[str], dict], judge: Callable[[], object], now: float, retry: bool = False) -> ReleasePlan:
    """``tags_of(version)``: that model version's registry tags; ``judge()``: the canary's verdict (read only when due)."""
    plan = _Planner(release, serving, tags_of, wanted)
    if wanted is None:
        share = f" and a {serving.canary_share:g}% canary stays unjudged" if serving.canary_id else ""
        return plan.done("alias missing", f"{release.model} names no version any more: nothing is removed, {_named(serving.primary, serving.primary_id)} keeps serving{share}", warning=True)
    status = read_status(release.name, tags_of(wanted))
    if serving.canary_id is not None:
        if serving.canary == wanted:
            return _judge_canary(plan, wanted, status, now, judge, retry)
        why = f"the alias now names version {wanted}" if serving.canary else "it is not a version mpack published for this release"
        plan.drop_canary(why, status="dropped" if serving.canary else None)
        serving = plan.serving = replace(serving, canary=None, canary_id=None, canary_share=0.0, canary_since=None)
    if serving.primary == wanted and not serving.primary_settings_differ:
        plan.record(wanted, "serving", share=100.0, served_by=serving.primary_id)
        dropped = any(isinstance(step, DropCanary) for step in plan.steps)
        return plan.done("canary dropped" if dropped else "recorded" if plan.steps else "unchanged", f"version {wanted} serves all of {serving.where}", new_version=False)
    if status["status"] == "failed" and not retry:
        return plan.done("skipped", f"version {wanted} failed before ({status['reason'] or 'no reason recorded'}): not retried until the alias names another version and comes back, or --retry", warning=True)
    again = status["served_by"]
    if status["status"] in SERVED_BEFORE and again in serving.published.get(wanted, ()) and serving.primary != wanted:
        plan.steps.append(ServeAgain(wanted, again, serving.where))
        plan.record(wanted, "serving", share=100.0, force=True, served_by=again)
        plan.retire_primary(wanted)
        return plan.done("served again", f"the alias moved back to version {wanted}: platform version {again}, which served it before, serves again")
    canary = release.canary if serving.primary_id is not None and serving.primary != wanted else None
    plan.steps += [BuildVersion(release.model_name, wanted, release.build.get("target", "lambda")), DeployVersion(wanted, canary, serving.where)]
    if canary is None:
        plan.record(wanted, "serving", share=100.0, force=True, served_by=DEPLOYED)
        plan.retire_primary(wanted)
        what = "redeployed with the release's settings" if serving.primary == wanted else f"replaces {_named(serving.primary, serving.primary_id)}"
        return plan.done("deployed", f"version {wanted} {what}", new_version=serving.primary != wanted)
    plan.record(wanted, "canary", share=canary, force=True)
    reason = f"version {wanted} takes {canary:g}% beside {_named(serving.primary, serving.primary_id)} for {release.bake_s} s, then is judged"
    return plan.done("canary", reason, bake_left_s=release.bake_s + release.ingestion_s)


def _judge_canary(plan: _Planner, wanted: str, status: dict, now: float, judge, retry: bool) -> ReleasePlan:
    serving, release = plan.serving, plan.release
    if status["status"] == "failed" and not retry:  # judged and refused before, but the drop did not happen (killed, refused)
        plan.drop_canary(status["reason"] or "it failed before", status=None)
        return plan.done("rolled back", f"version {wanted} failed before ({status['reason']}): its canary is dropped", failed=True)
    left = 0 if serving.canary_since is None else int(serving.canary_since + release.bake_s + release.ingestion_s - now)
    if left > 0:
        plan.record(wanted, "canary", share=serving.canary_share)
        return plan.done("baking", f"version {wanted} is a {serving.canary_share:g}% canary, judged in {left} s (bake {release.bake_s} s + {release.ingestion_s} s for the figures to arrive)", bake_left_s=left)
    verdict = judge()
    if verdict.passed:
        plan.steps.append(Promote(wanted, serving.canary_id, verdict.summary))
        plan.record(wanted, "serving", share=100.0, force=True, served_by=serving.canary_id)
        plan.retire_primary(wanted)
        return plan.done("promoted", f"version {wanted} passed its bake: {verdict.summary}")
    plan.record(wanted, "failed", reason=f"canary rolled back: {verdict.summary}", force=True)  # first: a sync killed after it still drops the canary
    plan.drop_canary(verdict.summary, status=None)
    if serving.primary:
        plan.record(serving.primary, "serving", share=100.0, served_by=serving.primary_id)
    return plan.done("rolled back", f"version {wanted} failed its bake: {verdict.summary}; {_named(serving.primary, serving.primary_id)} keeps all traffic", failed=True)


class _Planner:
    """The steps gathered for one release, with the tag writes that keep the registry's records true."""

    def __init__(self, release: Release, serving: Serving, tags_of, wanted: str | None) -> None:
        self.release, self.serving, self.tags_of, self.wanted = release, serving, tags_of, wanted
        self.was_serving = _named(serving.primary, serving.primary_id)
        self.steps: list = []

    def record(self, version: str, status: str, share: float | None = None, reason: str | None = None, force: bool = False, served_by: str | None = None) -> None:
        """Write the status unless the registry already says it (``force``: the steps before change it)."""
        current = self.tags_of(version)
        since = current.get(f"mpack.{self.release.name}.since") if not force else None
        keep = served_by or (current.get(f"mpack.{self.release.name}.served_by") if status in ("retired", "failed") else None)
        wanted = status_tags(self.release.name, status, self.serving.where, share, reason, since, keep)
        if force or differs(self.release.name, current, wanted):
            summary = f"{status}" + (f" ({share:g}%)" if share is not None else "") + (f": {reason}" if reason else "")
            self.steps.append(RecordStatus(version, tuple(wanted.items()), summary))

    def retire_primary(self, replacement: str) -> None:
        primary = self.serving.primary
        if primary and primary != replacement:
            self.record(primary, "retired", reason=f"replaced by version {replacement}", force=True)

    def drop_canary(self, reason: str, status: str | None) -> None:
        """Drop the canary; ``status``: what the canary's model version becomes (None: leave its record)."""
        serving = self.serving
        self.steps.append(DropCanary(serving.canary or "?", serving.canary_id, reason))
        if status and serving.canary:
            self.record(serving.canary, status, reason=f"canary dropped: {reason}", force=True)

    def done(self, outcome: str, reason: str, warning: bool = False, failed: bool = False, bake_left_s: int | None = None, new_version: bool = True) -> ReleasePlan:
        warnings = (reason,) if warning else ()
        return ReleasePlan("sync", tuple(self.steps), self.release.name, self.wanted, outcome, reason, warnings, bake_left_s, failed, new_version, self.was_serving)


def _named(version: str | None, platform_id: str | None = None) -> str:
    if version:
        return f"version {version}"
    return f"platform version {platform_id} (not published by mpack for this release)" if platform_id else "nothing (first deploy)"
