"""A release on AWS Lambda: what the function's alias serves (read back from the versions' descriptions), its
lease, the canary's CloudWatch figures, and the moves — each through mpack deploy's own planner and executor."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mpack.infra.aws import deployer
from mpack.infra.aws.deployer import FunctionPlan
from mpack.infra.aws.function_state import FunctionState, read_state
from mpack.infra.aws.lease import Lease
from mpack.infra.aws.planner import function_settings_steps
from mpack.infra.aws.served import model_record, published_models
from mpack.infra.aws.session import Aws
from mpack.infra.aws.steps import DeployContext, MoveAlias
from mpack.infra.aws.version_metrics import version_metrics
from mpack.infra.errors import MpackError
from mpack.infra.local.function_config import parse_environment
from mpack.packager.deploy.aws_settings import DeploySettings, desired_function, region_of, smoke_tester
from mpack.packager.release.config import Release
from mpack.packager.release.gates import judge
from mpack.packager.release.serving import Serving


class AwsRelease:
    def __init__(self, release: Release, cache_dir=None, progress=None) -> None:
        self.release, self.cache_dir, self.progress = release, cache_dir, progress
        self.settings = DeploySettings(None, release.function, cache_dir=cache_dir, **release.deploy)
        self.aws = Aws(region_of(self.settings))
        self.where = f"aws lambda {release.function}:{self.settings.alias} ({self.aws.region})"
        self.state: FunctionState | None = None

    # -- reading -----------------------------------------------------------------------------------

    def read(self) -> Serving:
        state = self.state = read_state(self.aws, self.release.function, self.settings.alias, provisioned=self.settings.provisioned is not None)
        if not state.exists:
            return Serving(exists=False, where=self.where)
        models = published_models(state.descriptions, state.versions)
        ours = {v: m for v, m in models.items() if m.name == self.release.model_name}
        published: dict = {}
        for version in sorted(ours, key=int):  # every Lambda version of each model version with the settings asked
            if self._settings_match(version):
                published[ours[version].version] = (*published.get(ours[version].version, ()), version)
        alias = state.alias
        if alias is None:
            return Serving(exists=True, published=published, where=self.where)
        canary_id, share = next(iter(alias.weights.items()), (None, 0.0))
        return Serving(
            exists=True,
            primary=ours[alias.version].version if alias.version in ours else None,
            primary_id=alias.version,
            primary_settings_differ=not self._settings_match(alias.version) or self._function_settings_differ(state),
            canary=ours[canary_id].version if canary_id in ours else None,
            canary_id=canary_id,
            canary_share=round(share * 100, 2),
            canary_since=alias.since,
            published=published,
            where=self.where,
        )

    def lease(self, ttl_s: int) -> Lease | None:
        """None where there is no function yet to hold it (CreateFunction is the guard there)."""
        return Lease(self.aws, self.release.function, ttl_s) if self.state is not None and self.state.exists else None

    def verdict(self, serving: Serving, until: float):
        since = serving.canary_since or (until - self.release.bake_s)
        canary = version_metrics(self.aws, self.release.function, self.settings.alias, serving.canary_id, since, until)
        stable = version_metrics(self.aws, self.release.function, self.settings.alias, serving.primary_id, since, until) if serving.primary_id else None
        return judge(canary, stable, self.release.gates)

    # -- moving ------------------------------------------------------------------------------------

    def deploy(self, built, model_version: str, canary: float | None) -> tuple[str, str]:
        """(the Lambda version now serving it, what was done)."""
        settings = dataclasses.replace(self.settings, bundle=Path(str(built.artifact)), canary=canary)
        desired = desired_function(settings, self.aws)
        planned = deployer.plan_deployment(self.aws, desired)
        outcome = deployer.apply(self.aws, planned, smoke_tester(settings, self.aws, desired), progress=self.progress)
        state = outcome.state
        weights = state.get("alias_weights") or {}
        version = next(iter(weights), None) if canary is not None else state.get("alias_version")
        return version, f"alias {self.settings.alias}: version {state.get('alias_version')}" + (f", canary {weights}" if weights else "")

    def serve(self, platform_id: str, model_version: str) -> str:
        state = read_state(self.aws, self.release.function, self.settings.alias)
        alias = state.alias
        self._point_alias("serve", state, platform_id, alias.version if alias else None, model_version)
        return f"alias {self.settings.alias} -> version {platform_id}"

    def promote(self, model_version: str, canary_id: str) -> str:
        state, alias = self._alias_with_canary(canary_id)
        self._point_alias("promote", state, canary_id, alias.version, model_version)
        return f"alias {self.settings.alias}: all traffic on version {canary_id}"

    def drop_canary(self, canary_id: str) -> str:
        state, alias = self._alias_with_canary(canary_id)
        serving = published_models(state.descriptions, state.versions).get(alias.version)
        self._point_alias("rollback", state, alias.version, alias.previous, serving.version if serving else None)
        return f"alias {self.settings.alias}: canary version {canary_id} dropped, version {alias.version} keeps all traffic"

    # -- internals ---------------------------------------------------------------------------------

    def _alias_with_canary(self, canary_id: str):
        """The alias as it is now, refused unless its canary is still the one the plan judged."""
        state = read_state(self.aws, self.release.function, self.settings.alias)
        alias = state.alias
        if alias is None or canary_id not in alias.weights:
            found = f"routes {alias.weights or 'no canary'} beside version {alias.version}" if alias else "is gone"
            raise MpackError(f"alias {self.settings.alias} of {self.release.function} changed since this sync planned: it {found}, not the canary version {canary_id}", "run the sync again: it plans from what serves now")
        return state, alias

    def _point_alias(self, action: str, state: FunctionState, version: str, previous: str | None, model_version: str | None) -> None:
        """All of the alias's traffic to ``version`` (guarded by the alias's RevisionId as read), recording ``previous``."""
        alias = state.alias
        step = MoveAlias(self.settings.alias, version, None, None, alias.revision_id if alias else None, previous)
        planned = FunctionPlan(action, (step,), self._desired(model_version), state, self.settings.alias)
        deployer.run(planned, DeployContext(self.aws, planned.desired, planned.state, lambda version: "not needed"), self.progress)

    def _desired(self, model_version: str | None):
        """What the alias moves record: the model version that ends up serving (the alias's description)."""
        placeholder = desired_function(self.settings)
        record = model_record(self.release.model_name, model_version, f"models:/{self.release.model_name}/{model_version}") if model_version else placeholder.model
        return dataclasses.replace(placeholder, model=record)

    def _function_settings_differ(self, state: FunctionState) -> bool:
        """The function's own settings the release asks for and Lambda lacks (a sync killed after moving the alias,
        before these steps, leaves them undone): the deploy is planned again, and applies only what is missing."""
        settings = self.settings
        wanted = dataclasses.replace(desired_function(settings), reserved=settings.reserved, provisioned=settings.provisioned, function_url=settings.function_url)
        return bool(function_settings_steps(state, wanted))

    def _settings_match(self, lambda_version: str) -> bool:
        """Whether a published version runs with the memory, timeout and environment the release asks for."""
        settings = (self.state.version_settings if self.state else {}).get(lambda_version)
        if settings is None:
            return False
        wanted_env = dict(parse_environment(list(self.settings.environment)))
        return settings.get("MemorySize") == self.settings.memory_mb and settings.get("Timeout") == self.settings.timeout_s and settings["Environment"]["Variables"] == wanted_env
