"""The steps of a release sync, applied by the one executor (``mpack.infra.plan``). Each says what it will do and
does it through the context's platform and registry; none keeps state of its own, so a sync killed between two
steps is planned again from the platform and the registry and converges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

DEPLOYED = "(deployed)"  # a tag value filled in when applied: the platform version this sync's deploy published


@dataclass
class SyncContext:
    release: Any  # config.Release
    platform: Any  # a release platform (aws_platform.AwsRelease)
    registry: Any  # source.registry.Registry
    build: Any  # (model version) -> BuildReport
    built: Any = None  # the BuildReport of this sync's build
    progress: Any = None  # the build's progress (the stage it reached)
    deployed: str | None = None  # the platform version this sync's deploy published (or reused)

    @property
    def build_stage(self) -> str | None:
        return getattr(self.progress, "stage_name", None)


@dataclass(frozen=True)
class BuildVersion:
    model: str
    version: str
    target: str

    def describe(self) -> str:
        return f"build models:/{self.model}/{self.version} for {self.target}"

    def apply(self, ctx: SyncContext) -> str:
        ctx.built = ctx.build(self.version)
        return f"built {ctx.built.artifact} ({ctx.built.zipped_bytes / 2**20:.1f} MB)" if ctx.built.zipped_bytes else f"built {ctx.built.artifact}"


@dataclass(frozen=True)
class DeployVersion:
    version: str
    canary: float | None  # percent; None: all the alias's traffic
    where: str
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        share = f"as a {self.canary:g}% canary" if self.canary is not None else "with all of its traffic"
        return f"deploy version {self.version} to {self.where} {share}, after its smoke test"

    def apply(self, ctx: SyncContext) -> str:
        ctx.deployed, note = ctx.platform.deploy(ctx.built, self.version, self.canary)
        return note


@dataclass(frozen=True)
class ServeAgain:
    version: str
    platform_id: str
    where: str
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        return f"point {self.where} at its version {self.platform_id}, which served version {self.version} before (no build, no smoke test: it passed one and served)"

    def apply(self, ctx: SyncContext) -> str:
        return ctx.platform.serve(self.platform_id, self.version)


@dataclass(frozen=True)
class Promote:
    version: str
    platform_id: str  # the canary as judged: refused if the alias has another one now
    verdict: str
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        return f"promote the canary (version {self.version}) to all traffic: {self.verdict}"

    def apply(self, ctx: SyncContext) -> str:
        return ctx.platform.promote(self.version, self.platform_id)


@dataclass(frozen=True)
class DropCanary:
    version: str
    platform_id: str  # the canary as seen when planning: only that one is dropped
    reason: str
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        return f"roll back the canary (version {self.version}): {self.reason}"

    def apply(self, ctx: SyncContext) -> str:
        return ctx.platform.drop_canary(self.platform_id)


@dataclass(frozen=True)
class RecordStatus:
    version: str
    tags: tuple  # ((key, value or None), ...)
    summary: str

    def describe(self) -> str:
        return f"record in the registry: version {self.version} {self.summary}"

    def apply(self, ctx: SyncContext) -> None:
        tags = {key: (ctx.deployed if value == DEPLOYED else value) for key, value in self.tags}
        ctx.registry.set_version_tags(ctx.release.model_name, self.version, tags)
