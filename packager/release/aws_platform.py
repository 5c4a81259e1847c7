"""A release on AWS Lambda: what the function's alias serves (read back from the versions' descriptions), its
lease, the canary's CloudWatch figures, and the moves — each through mpack deploy's own planner and executor."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from mpack.infra.aws import deployer
from mpack.infra.aws.deployer import FunctionPlan
from mpack.infra.aws.function_state import FunctionState, read_state
from mpack.infra.aws.lease import Lease
from mpack.infra.aws.served import model_record, published_models
from mpack.infra.aws.session import Aws
from mpack.infra.aws.steps import DeployContext, MoveAlias
from mpack.infra.aws.version_metrics import version_metrics
from mpack.infra.local.function_config import parse_environment
from mpack.packager.deploy.aws_settings import DeploySettings, desired_function, region_of, smoke_tester
from mpack.packager.release.config import Release
from mpack.packager.release.gates import judge
from mpack.packager.release.serving import Serving

LAMBDA_VERSION = "Lambda version "  # how a published version is named in plans (model versions are "version N")


class AwsRelease:
    def __init__(self, release: Release, cache_dir=None, progress=None) -> None:
        self.release, self.cache_dir, self.progress = release, cache_dir, progress
        self.settings = DeploySettings(None, release.function, cache_dir=cache_dir, **release.deploy)
        self.aws = Aws(region_of(self.settings))
        self.where = f"aws lambda {release.function}:{self.settings.alias} ({self.aws.region})"
        self.state: FunctionState | None = None

    # -- reading -----------------------------------------------------------------------------------

    def read(self) -> Serving:
        state = self.state = read_state(self.aws, self.release.function, self.settings.alias)
        if not state.exists:
            return Serving(exists=False, where=self.where)
        models = published_models(state.descriptions, state.versions)
        ours = {v: m for v, m in models.items() if m.name == self.release.model_name}
        published: dict = {}
        for version in sorted(ours, key=int):  # the newest Lambda version of each model version, with the settings asked
            if self._settings_match(version):
                published[ours[version].version] = f"{LAMBDA_VERSION}{version}"
        alias = state.alias
        if alias is None:
            return Serving(exists=True, published=published, where=self.where)
        canary_id, share = next(iter(alias.weights.items()), (None, 0.0))
        return Serving(
            exists=True,
            primary=ours[alias.version].version if alias.version in ours else None,
            primary_id=alias.version,
            primary_settings_differ=not self._settings_match(alias.version),
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

    def deploy(self, built, model_version: str, canary: float | None) -> str:
        settings = dataclasses.replace(self.settings, bundle=Path(str(built.artifact)), canary=canary)
        desired = desired_function(settings, self.aws)
        planned = deployer.plan_deployment(self.aws, desired)
        outcome = deployer.apply(self.aws, planned, smoke_tester(settings, self.aws, desired), progress=self.progress)
        state = outcome.state
        weights = state.get("alias_weights") or {}
        return f"alias {self.settings.alias}: version {state.get('alias_version')}" + (f", canary {weights}" if weights else "") + "; " + "; ".join(outcome.done)

    def serve(self, platform_id: str, model_version: str) -> str:
        lambda_version = platform_id.removeprefix(LAMBDA_VERSION)
        state = read_state(self.aws, self.release.function, self.settings.alias)
        alias = state.alias
        step = MoveAlias(self.settings.alias, lambda_version, None, None, alias.revision_id if alias else None, alias.version if alias else None)
        self._run(FunctionPlan("serve", (step,), self._desired(model_version), state, self.settings.alias))
        return f"alias {self.settings.alias} -> version {lambda_version}"

    def promote(self, model_version: str) -> str:
        planned = deployer.plan_promotion(self.aws, self._desired(model_version))
        self._run(planned)
        return f"alias {self.settings.alias}: all traffic on the canary's version"

    def drop_canary(self, serving_version: str | None) -> str:
        planned = deployer.plan_rollback_to_previous(self.aws, self._desired(serving_version))
        self._run(planned)
        return f"alias {self.settings.alias}: canary dropped"

    # -- internals ---------------------------------------------------------------------------------

    def _run(self, planned: FunctionPlan) -> None:
        deployer.run(planned, DeployContext(self.aws, planned.desired, planned.state, lambda version: "not needed"), self.progress)

    def _desired(self, model_version: str | None):
        """What the alias moves record: the model version that ends up serving (the alias's description)."""
        placeholder = desired_function(self.settings)
        record = model_record(self.release.model_name, model_version, f"models:/{self.release.model_name}/{model_version}") if model_version else placeholder.model
        return dataclasses.replace(placeholder, model=record)

    def _settings_match(self, lambda_version: str) -> bool:
        """Whether a published version runs with the memory, timeout and environment the release asks for."""
        settings = (self.state.version_settings if self.state else {}).get(lambda_version)
        if settings is None:
            return False
        wanted_env = dict(parse_environment(list(self.settings.environment)))
        return settings.get("MemorySize") == self.settings.memory_mb and settings.get("Timeout") == self.settings.timeout_s and settings["Environment"]["Variables"] == wanted_env


def now() -> float:
    return time.time()
