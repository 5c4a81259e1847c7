"""A release on Azure Functions: what the app serves (read back from the packages mpack kept, whose blobs record the
model version), its lease (a blob beside them), the canary slot's Azure Monitor figures, and the moves — each through
mpack deploy's own Azure planner and executor. A platform id here is a package's sha256."""

from __future__ import annotations

import os
from pathlib import Path

from mpack.infra.azure import deployer
from mpack.infra.azure.app_state import ARCHIVE_PREFIX, CANARY_SLOT, MODEL_KEY, SHA_KEY, AppState, read_state
from mpack.infra.azure.lease import AzureLease
from mpack.infra.azure.metrics import NOT_MEASURED, app_metrics
from mpack.infra.azure.session import STORAGE_ENV, AzureSession, AzureTarget, azure_call, resolve_subscription
from mpack.infra.errors import MpackError
from mpack.packager.cli.azure_deploy import AzureSettings
from mpack.packager.release.config import Release
from mpack.packager.release.gates import Verdict, judge
from mpack.packager.release.serving import Serving


class AzureRelease:
    def __init__(self, release: Release, cache_dir=None, progress=None) -> None:
        self.release, self.progress = release, progress
        self.settings = AzureSettings(**{"smoke_test": "local", **release.deploy})
        connection = self.settings.storage_connection_string or os.environ.get(STORAGE_ENV)
        self.session = AzureSession(AzureTarget(resolve_subscription(self.settings.subscription), self.settings.resource_group, self.settings.app, connection))
        self.where = f"azure functions {self.settings.app} ({self.settings.resource_group})"
        self.state: AppState | None = None
        self.container = None  # where the packages are kept (and the lease)

    # -- reading -----------------------------------------------------------------------------------

    def read(self) -> Serving:
        state = self.state = read_state(self.session)
        if self.release.canary is not None and state.plan == "flex":
            raise MpackError(
                f"release {self.release.name} asks for a {self.release.canary:g}% canary, but {state.name} runs on Flex Consumption, which has no deployment slots",
                "remove canary from the release (it then goes all at once), or release to an app on a Premium or Dedicated plan (slots)",
            )
        ours = {sha: model.rpartition(":")[2] for sha, model in self._kept(state).items() if model.rpartition(":")[0] == self.release.model_name}
        published: dict = {}
        for sha, version in sorted(ours.items()):
            published[version] = (*published.get(version, ()), sha)
        primary_id = state.serving_sha or ("unmanaged" if state.serving_unmanaged else None)
        canary_id, canary, since = None, None, None
        if state.canary_percent and state.slot is not None:
            canary_id = state.slot.sha or f"slot {CANARY_SLOT}"
            canary, since = ours.get(state.slot.sha or ""), state.slot.since
        return Serving(
            exists=True,
            primary=ours.get(state.serving_sha or ""),
            primary_id=primary_id,
            canary=canary,
            canary_id=canary_id,
            canary_share=round(state.canary_percent, 2) if canary_id else 0.0,
            canary_since=since,
            published=published,
            where=self.where,
        )

    def lease(self, ttl_s: int) -> AzureLease | None:
        return AzureLease(self.container, self.settings.app, ttl_s) if self.container is not None else None

    def verdict(self, serving: Serving, until: float) -> Verdict:
        """Error rate from Azure Monitor's Requests and Http5xx of the canary slot; p99 is not measured there (said)."""
        since = serving.canary_since or (until - self.release.bake_s)
        canary = app_metrics(self.session, CANARY_SLOT, since, until)
        verdict = judge(canary, None, self.release.gates)  # the stable version's figures serve only a p99 ratio, not measured here
        if not canary.invocations:
            return verdict
        average = f"; its worst one-minute average response time was {canary.average_ms:.1f} ms" if canary.average_ms is not None else ""
        return Verdict(verdict.passed, f"{verdict.summary}; p99 {NOT_MEASURED}, so max-p99-ms and max-p99-ratio were not applied{average}")

    # -- moving ------------------------------------------------------------------------------------

    def deploy(self, built, model_version: str, canary: float | None) -> tuple[str, str]:
        """(the package now serving it, what was done)."""
        package = deployer.read_package(Path(str(built.artifact)))
        planned = deployer.plan_deployment(self.session, package, canary, self.settings.package_container)
        smoke = deployer.local_smoke if self.settings.smoke_test == "local" else None
        deployer.apply(self.session, planned, smoke, progress=self.progress)
        share = f"{canary:g}% of the traffic on slot {CANARY_SLOT}" if canary is not None else "all the traffic"
        return package.sha, f"{self.settings.app}: package {package.sha[:12]} (version {model_version}) takes {share}"

    def serve(self, platform_id: str, model_version: str) -> str:
        planned = deployer.plan_kept_package(self.session, platform_id, f"{self.release.model_name}:{model_version}", self.settings.package_container)
        deployer.apply(self.session, planned, None, progress=self.progress)
        return f"{self.settings.app}: kept package {platform_id[:12]} serves version {model_version} again"

    def promote(self, model_version: str, canary_id: str) -> str:
        self._check_canary(canary_id)
        deployer.apply(self.session, deployer.plan_promotion(self.session), None, progress=self.progress)
        return f"{self.settings.app}: all traffic on package {canary_id[:12]} (version {model_version})"

    def drop_canary(self, canary_id: str) -> str:
        state = self._check_canary(canary_id)
        deployer.apply(self.session, deployer.plan_rollback(self.session), None, progress=self.progress)
        return f"{self.settings.app}: canary {canary_id[:12]} dropped, package {(state.serving_sha or 'unmanaged')[:12]} keeps all traffic"

    # -- internals ---------------------------------------------------------------------------------

    def _check_canary(self, canary_id: str) -> AppState:
        """The app as it is now, refused unless its canary is still the one the plan judged."""
        state = read_state(self.session)
        now = (state.slot.sha or f"slot {CANARY_SLOT}") if state.canary_percent and state.slot is not None else None
        if now != canary_id:
            found = f"routes {state.canary_percent:g}% to package {(now or '?')[:12]}" if now else "has no canary"
            raise MpackError(f"{state.name} changed since this sync planned: it {found}, not the canary {canary_id[:12]}", "run the sync again: it plans from what serves now")
        return state

    def _kept(self, state: AppState) -> dict[str, str]:
        """sha256 -> "model:version" of every package mpack kept for this app (what may serve again without a build)."""
        if state.plan == "flex":
            self.container, prefix = self.session.container(state.container_url), ARCHIVE_PREFIX
        else:
            url, connection = deployer.packages_container(self.session, state, self.settings.package_container)
            self.container, prefix = self.session.container(url, connection), f"{state.name}/"
        with azure_call(f"list the packages kept for {state.name}"):
            if not self.container.exists():
                return {}
            blobs = list(self.container.list_blobs(name_starts_with=prefix, include=["metadata"]))
        return {b.metadata[SHA_KEY]: b.metadata[MODEL_KEY] for b in blobs if b.name.endswith(".zip") and b.metadata and SHA_KEY in b.metadata and MODEL_KEY in b.metadata}
