"""One sync of one release: resolve the alias once, read what serves from the platform, decide, then — holding
the platform's lease — read again, decide again and apply with the one executor, recording in the registry.
A version that fails its build or smoke test is recorded as failed there, so the next sync does not retry it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.errors import MpackError, SmokeTestFailed
from mpack.infra.plan import StepFailed, execute
from mpack.packager.release.config import Release
from mpack.packager.release.decide import ReleasePlan, decide
from mpack.packager.release.steps import BuildVersion, DeployVersion, SyncContext
from mpack.packager.release.tags import status_tags
from mpack.packager.source.registry import Registry

DEFAULT_LEASE_S = 900
MODEL_STAGES = ("parity", "verify")  # a build failing here is the model version's own (conversion also builds its environment: a download may fail)


@dataclass(frozen=True)
class SyncOptions:
    plan_only: bool = False
    retry: bool = False
    cache_dir: Path | None = None
    lease_s: int = DEFAULT_LEASE_S
    tracking_uri: str | None = None
    registry_uri: str | None = None
    say: object = None  # (text) -> None: progress lines
    debug: bool = False  # let unexpected exceptions through (tracebacks)


@dataclass
class ReleaseOutcome:
    release: str
    model: str
    wanted: str | None = None
    outcome: str = "unchanged"
    reason: str = ""
    plan: list = field(default_factory=list)
    applied: bool = False
    done: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    failed: bool = False
    error: dict | None = None
    bake_left_s: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()} | {"ok": not self.failed}


def sync_release(release: Release, options: SyncOptions) -> ReleaseOutcome:
    """Never raises for one release's trouble: a long-running sync goes on with the others (and the next tick)."""
    started = time.monotonic()
    outcome = ReleaseOutcome(release.name, release.model)
    try:
        _sync(release, options, outcome)
    except MpackError as error:
        outcome.failed, outcome.outcome, outcome.reason = True, "error", error.message
        outcome.error = {"message": error.message, "hint": error.hint}
    except Exception as error:  # a bug or an unforeseen failure: reported, not fatal to --watch
        if options.debug:
            raise
        outcome.failed, outcome.outcome, outcome.reason = True, "error", f"{type(error).__name__}: {error}"
        outcome.error = {"message": outcome.reason, "hint": "rerun with --debug for the traceback, and report it"}
    outcome.seconds = round(time.monotonic() - started, 2)
    return outcome


def _sync(release: Release, options: SyncOptions, outcome: ReleaseOutcome) -> None:
    from mpack.packager.release.platforms import release_platform

    registry = Registry(release.tracking_uri or options.tracking_uri, release.registry_uri or options.registry_uri)
    platform = release_platform(release, options)
    plan = _decide(release, registry, platform, options, outcome)
    if options.plan_only or not plan.steps:
        _report(outcome, plan)
        if not options.plan_only:
            _remember_alias(registry, release, plan.wanted)
        return
    lease = platform.lease(options.lease_s)
    if lease is None:  # no function yet: CreateFunction is the guard
        _report(outcome, plan)
        _apply(release, registry, platform, plan, options, outcome)
        _remember_alias(registry, release, plan.wanted)
        return
    holder = lease.acquire()
    if holder is not None:
        outcome.outcome, outcome.reason = "held", f"another sync holds the lease on {release.place} ({holder.holder}, until {time.strftime('%H:%M:%S', time.gmtime(holder.until))} UTC): it applies, this one did nothing"
        outcome.plan = plan.descriptions()
        return
    try:
        with lease.kept():
            plan = _decide(release, registry, platform, options, outcome)  # the registry and the platform read again, now that no other sync applies
            _report(outcome, plan)
            if plan.steps:
                _apply(release, registry, platform, plan, options, outcome)
            _remember_alias(registry, release, plan.wanted)
    finally:
        lease.release()


def wanted_version(registry: Registry, release: Release, aliases: dict) -> str | None:
    """The version the alias names now (None: the alias is gone), read once per plan; a pinned version as it is."""
    if release.reference.startswith("@"):
        return aliases.get(release.reference[1:])
    registry.version_tags(release.model_name, release.reference)  # exists, or a clear error
    return release.reference


def alias_key(release: Release) -> str:
    """The registered model's tag remembering which version the alias named at the last sync of this release."""
    return f"mpack.{release.name}.alias_named"


def _remember_alias(registry: Registry, release: Release, wanted: str | None) -> None:
    if wanted is not None and registry.aliases_and_tags(release.model_name)[1].get(alias_key(release)) != wanted:
        registry.set_model_tag(release.model_name, alias_key(release), wanted)


def _decide(release: Release, registry: Registry, platform, options: SyncOptions, outcome: ReleaseOutcome) -> ReleasePlan:
    """Resolve the alias (once for this plan), read what serves, decide. A version recorded as failed is tried
    again when the alias named another version at the last sync (it moved away and back), or with --retry."""
    aliases, model_tags = registry.aliases_and_tags(release.model_name)
    wanted = outcome.wanted = wanted_version(registry, release, aliases)
    named_before = model_tags.get(alias_key(release))
    retry = options.retry or (named_before is not None and named_before != wanted)
    serving = platform.read()
    tags: dict = {}

    def tags_of(version: str) -> dict:
        if version not in tags:
            tags[version] = registry.version_tags(release.model_name, version)
        return tags[version]

    return decide(release, wanted, serving, tags_of, lambda: platform.verdict(serving, time.time()), time.time(), retry)


def _apply(release: Release, registry: Registry, platform, plan: ReleasePlan, options: SyncOptions, outcome: ReleaseOutcome) -> None:
    progress = BuildProgress(options.say)
    context = SyncContext(release, platform, registry, lambda version: _build(release, version, options, progress), progress=progress)

    def step_done(step) -> None:
        if options.say:
            options.say(step.line)

    try:
        record = execute(plan, context, step_done)
    except StepFailed as failure:
        step = plan.steps[failure.failed.number - 1]
        outcome.done = failure.record.lines
        outcome.failed, outcome.outcome = True, "failed"
        outcome.reason, outcome.error = failure.message, {"message": failure.message, "hint": failure.hint}
        if _the_versions_fault(step, failure, context) and plan.wanted and plan.new_version:
            # the version's own fault (its build or its smoke test): recorded, and not retried until the alias moves or --retry
            where = platform.where
            registry.set_version_tags(release.model_name, plan.wanted, status_tags(release.name, "failed", where, reason=failure.cause.message))
            outcome.warnings.append(f"version {plan.wanted} is recorded as failed in the registry: the next sync does not retry it (--retry does)")
        return
    outcome.applied, outcome.done = True, record.lines


def _the_versions_fault(step, failure: StepFailed, context: SyncContext) -> bool:
    """A build stopped in a stage that judges the model (its conversion, its parity, its bundle answering), or a
    deploy stopped by its smoke test: the version's own fault. A download, a dependency, a missing Docker engine, a
    platform's refusal or a network error is not: the next sync tries again."""
    if isinstance(step, BuildVersion):
        return context.build_stage in MODEL_STAGES
    inner = failure.cause
    return isinstance(step, DeployVersion) and isinstance(inner, StepFailed) and (isinstance(inner.cause, SmokeTestFailed) or inner.failed.description.startswith("wait for the new version's SnapStart"))


class BuildProgress:
    """The build's progress as a sync reports it (warnings only), remembering the stage it is in: a failure is
    the model's own only in the stages that judge the model."""

    def __init__(self, say) -> None:
        self.say, self.stage_name = say, None

    @contextmanager
    def stage(self, name: str):
        self.stage_name = name
        yield
        self.stage_name = None  # done: a later failure is not this stage's

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        if self.say:
            self.say(f"warning: {text}")


def _build(release: Release, version: str, options: SyncOptions, progress: BuildProgress):
    from mpack.packager.bundle.dependencies import default_cache_dir
    from mpack.packager.pipeline import BuildOptions, build
    from mpack.packager.targets import get_target

    cache = options.cache_dir or default_cache_dir()
    target = get_target(release.build.get("target", "lambda"))
    folder = cache / "releases" / release.name / version
    where = {"tag": f"mpack-{release.name}:{version}".lower()} if target.kind == "image" else {"output": folder / f"{release.model_name}-{version}.zip"}
    if "output" in where and where["output"].exists():
        where["output"].unlink()  # an earlier sync killed after its build: build again rather than trust a half-checked file
    options_ = BuildOptions(model=f"models:/{release.model_name}/{version}", cache_dir=options.cache_dir, tracking_uri=release.tracking_uri or options.tracking_uri, registry_uri=release.registry_uri or options.registry_uri, **where, **release.build)
    return build(options_, progress)


def _report(outcome: ReleaseOutcome, plan: ReleasePlan) -> None:
    outcome.outcome, outcome.reason, outcome.plan = plan.outcome, plan.reason, plan.descriptions()
    outcome.warnings, outcome.bake_left_s, outcome.failed = list(plan.warnings), plan.bake_left_s, plan.failed
