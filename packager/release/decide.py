"""From (the version the registry names, what the platform serves, the registry's records) to the steps that
converge one to the other — or none. Pure: everything it needs is read before, so ``--plan`` shows exactly
what a sync would apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mpack.infra.plan import Plan
from mpack.packager.release.config import Release
from mpack.packager.release.serving import Serving
from mpack.packager.release.steps import BuildVersion, DeployVersion, DropCanary, Promote, RecordStatus, ServeAgain
from mpack.packager.release.tags import differs, read_status, status_tags

SERVED_BEFORE = ("serving", "retired")  # a published version in one of these states passed its smoke test and served


@dataclass(frozen=True)
class ReleasePlan(Plan):
    release: str = ""
    wanted: str | None = None  # the model version the registry names
    outcome: str = "unchanged"  # unchanged | recorded | deployed | canary | baking | promoted | rolled back | canary dropped | served again | skipped | alias missing
    reason: str = ""  # why, in words
    warnings: tuple = field(default_factory=tuple)
    bake_left_s: int | None = None  # a baking canary: seconds until its verdict
    failed: bool = False  # the wanted version was refused by this plan (its canary's gates)

    def serving(self) -> str:
        return "the version the alias served before"


def decide(release: Release, wanted: str | None, serving: Serving, tags_of: Callable[[str], dict], judge: Callable[[], object], now: float, retry: bool = False) -> ReleasePlan:
    """``tags_of(version)``: that model version's registry tags; ``judge()``: the canary's verdict (read only when due)."""
    name = release.name
    plan = _Planner(release, serving, tags_of, wanted)
    if wanted is None:
        still = f"version {serving.primary} keeps serving" if serving.primary else "what serves keeps serving"
        return plan.done("alias missing", f"{release.model} names no version any more: nothing is removed, {still}", warning=True)
    if serving.canary is not None:
        if serving.canary == wanted:
            return _judge_canary(plan, wanted, now, judge)
        plan.drop_canary(f"the alias now names version {wanted}", retire=True)
        serving = replace(serving, canary=None, canary_id=None, canary_share=0.0, canary_since=None)
        plan.serving = serving
    if serving.primary == wanted and not serving.primary_settings_differ:
        plan.record(wanted, "serving", share=100.0)
        dropped = any(isinstance(step, DropCanary) for step in plan.steps)
        return plan.done("canary dropped" if dropped else "recorded" if plan.steps else "unchanged", f"version {wanted} serves all of {serving.where}")
    status = read_status(name, tags_of(wanted))
    if status["status"] == "failed" and not retry:
        return plan.done("skipped", f"version {wanted} failed before ({status['reason'] or 'no reason recorded'}): not retried until the alias moves or --retry", warning=True)
    platform_id = serving.published.get(wanted)
    if platform_id and status["status"] in SERVED_BEFORE and not serving.primary_settings_differ:
        plan.steps.append(ServeAgain(wanted, platform_id, serving.where))
        plan.record(wanted, "serving", share=100.0, force=True)
        plan.retire_primary(wanted)
        return plan.done("served again", f"the alias moved back to version {wanted}: its published {platform_id} serves again")
    canary = release.canary if serving.primary_id is not None and serving.primary != wanted else None
    plan.steps += [BuildVersion(release.model_name, wanted, release.build.get("target", "lambda")), DeployVersion(wanted, canary, serving.where)]
    if canary is None:
        plan.record(wanted, "serving", share=100.0, force=True)
        plan.retire_primary(wanted)
        return plan.done("deployed", f"version {wanted} replaces {_named(serving.primary)}")
    plan.record(wanted, "canary", share=canary, force=True)
    return plan.done("canary", f"version {wanted} takes {canary:g}% beside version {serving.primary or '(not deployed by mpack)'} for {release.bake_s} s, then is judged")


def _judge_canary(plan: _Planner, wanted: str, now: float, judge) -> ReleasePlan:
    serving, release = plan.serving, plan.release
    left = 0 if serving.canary_since is None else int(serving.canary_since + release.bake_s - now)
    if left > 0:
        plan.record(wanted, "canary", share=serving.canary_share)
        return plan.done("baking", f"version {wanted} has baked {release.bake_s - left} s of {release.bake_s} s as a {serving.canary_share:g}% canary", bake_left_s=left)
    verdict = judge()
    if verdict.passed:
        plan.steps.append(Promote(wanted, verdict.summary))
        plan.record(wanted, "serving", share=100.0, force=True)
        plan.retire_primary(wanted)
        return plan.done("promoted", f"version {wanted} passed its bake: {verdict.summary}")
    plan.drop_canary(verdict.summary, retire=False)
    plan.record(wanted, "failed", reason=f"canary rolled back: {verdict.summary}", force=True)
    if serving.primary:
        plan.record(serving.primary, "serving", share=100.0)
    return plan.done("rolled back", f"version {wanted} failed its bake: {verdict.summary}; version {serving.primary} keeps all traffic", failed=True)


class _Planner:
    """The steps gathered for one release, with the tag writes that keep the registry's records true."""

    def __init__(self, release: Release, serving: Serving, tags_of, wanted: str | None) -> None:
        self.release, self.serving, self.tags_of, self.wanted = release, serving, tags_of, wanted
        self.steps: list = []

    def record(self, version: str, status: str, share: float | None = None, reason: str | None = None, force: bool = False) -> None:
        """Write the status unless the registry already says it (``force``: the steps before change it)."""
        current = self.tags_of(version)
        since = current.get(f"mpack.{self.release.name}.since") if not force else None
        wanted = status_tags(self.release.name, status, self.serving.where, share, reason, since)
        if force or differs(self.release.name, current, wanted):
            summary = f"{status}" + (f" ({share:g}%)" if share is not None else "") + (f": {reason}" if reason else "")
            self.steps.append(RecordStatus(version, tuple(wanted.items()), summary))

    def retire_primary(self, replacement: str) -> None:
        primary = self.serving.primary
        if primary and primary != replacement:
            self.record(primary, "retired", reason=f"replaced by version {replacement}", force=True)

    def drop_canary(self, reason: str, retire: bool) -> None:
        serving = self.serving
        self.steps.append(DropCanary(serving.canary, reason, serving.primary))
        if retire:
            self.record(serving.canary, "retired", reason=f"canary dropped: {reason}", force=True)

    def done(self, outcome: str, reason: str, warning: bool = False, failed: bool = False, bake_left_s: int | None = None) -> ReleasePlan:
        warnings = (reason,) if warning else ()
        return ReleasePlan("sync", tuple(self.steps), self.release.name, self.wanted, outcome, reason, warnings, bake_left_s, failed)


def _named(version: str | None) -> str:
    return f"version {version}" if version else "nothing (first deploy)"
