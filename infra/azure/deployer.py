"""Deploy, then roll back, an azure bundle: plan from the platform's state, then apply the same plan.

The package is smoke-tested before anything changes (on Flex Consumption nothing else can come
before traffic: a released package serves at once), every deployed package is kept, and the one it
replaced is recorded where the platform keeps its own state, so ``mpack rollback`` can point back.
An unchanged redeploy plans nothing.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.azure.app_state import CANARY_SLOT, PACKAGES_CONTAINER, RUN_FROM_PACKAGE, SETTING_PREVIOUS, AppState, read_state
from mpack.infra.azure.session import AzureSession, azure_call
from mpack.infra.azure.steps import ArchivePackage, ArchiveServing, CreateSlot, OneDeploy, PointAppAtPackage, ReleasePackage, RouteTraffic, SyncTriggers, UploadPackage, shown
from mpack.infra.errors import MpackError
from mpack.infra.functions_host.app_config import instance_memory_mb


@dataclass(frozen=True)
class AzurePackage:
    path: Path
    sha: str
    model: str  # "name:version"
    manifest: dict


@dataclass
class AzurePlan:
    action: str
    state: AppState
    steps: list
    package: AzurePackage | None = None
    memo: dict = field(default_factory=dict)  # what steps hand on to later ones (a SAS URL, an archived sha)
    done: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ok": True, "platform": "azure", "action": self.action, "state": self.state.describe(), "steps": [shown(s.describe()) for s in self.steps], "done": [shown(d) for d in self.done]}


def read_package(bundle: Path) -> AzurePackage:
    from mpack.handlers.errors import ModelLoadError
    from mpack.handlers.manifest import MANIFEST_NAME, Manifest

    if not bundle.is_file():
        raise MpackError(f"{bundle} is not a bundle zip", "deploy a zip from mpack build --target azure")
    try:
        with zipfile.ZipFile(bundle) as archive:
            manifest = Manifest.from_bytes(archive.read(MANIFEST_NAME), f"{bundle}:{MANIFEST_NAME}").to_dict()
    except (zipfile.BadZipFile, KeyError, ModelLoadError) as exc:
        raise MpackError(f"{bundle} is not an mpack bundle ({exc})", "build it with mpack build --target azure") from None
    if manifest["target"] != "azure":
        raise MpackError(f"{bundle} was built for --target {manifest['target']}, not azure", "build it with mpack build --target azure")
    with open(bundle, "rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
    return AzurePackage(bundle, sha, f"{manifest['model']['name']}:{manifest['model']['version']}", manifest)


def plan_deployment(session: AzureSession, package: AzurePackage, canary: float | None, package_container: str | None) -> AzurePlan:
    state = read_state(session)
    check_fits(state, package)
    if canary is not None:
        if state.plan == "flex":
            raise MpackError(
                "--canary needs deployment slots, and Flex Consumption has none",
                "deploy to a second Flex app and split traffic in front of it (Front Door / API Management), or drop --canary",
            )
        if not 0 < canary < 100:
            raise MpackError(f"--canary {canary:g} is not a percentage between 0 and 100", "e.g. --canary 10")
        return _plan_canary(session, state, package, canary, package_container)
    if state.canary_percent:
        raise MpackError(
            f"a canary is running on {state.name} ({state.canary_percent:g}% on slot {CANARY_SLOT})",
            "finish it first: mpack promote --platform azure ... (or mpack rollback --platform azure ...)",
        )
    if state.serving_sha == package.sha:
        return AzurePlan("deploy", state, [], package)
    if state.plan == "flex":
        steps: list = []
        if state.serving_unmanaged:
            steps.append(ArchiveServing(state.container_url))
        if package.sha not in state.archived:
            steps.append(ArchivePackage(state.container_url, package.sha, package.path, package.model))
        released_url = state.container_url.rstrip("/") + "/released-package.zip"
        steps += [ReleasePackage(state.container_url, package.sha, state.serving_sha, package.model), OneDeploy(released_url), SyncTriggers()]
        return AzurePlan("deploy", state, steps, package)
    container_url, connection = _packages_container(session, state, package_container)
    plan = AzurePlan("deploy", state, [], package, memo={"connection_string": connection})
    plan.steps = [
        UploadPackage(container_url, f"{session.target.app}/{package.sha}.zip", package.sha, package.path),
        PointAppAtPackage(package.sha, state.settings.get(RUN_FROM_PACKAGE), state.serving_sha),
        SyncTriggers(),
    ]
    return plan


def check_fits(state: AppState, package: AzurePackage) -> None:
    """The app must run the bundle's Python (its wheels and .pyc are for that one) and, on Flex,
    have instances as large as the memory the bundle was verified in."""
    python = package.manifest["runtime"]["python"]
    if state.python and state.python != python:
        raise MpackError(
            f"{state.name} runs Python {state.python}; the bundle is built for Python {python}",
            f"rebuild with --python {state.python}, or change the app's Python version",
        )
    verified = instance_memory_mb(package.manifest)
    if state.instance_memory_mb and state.instance_memory_mb < verified:
        raise MpackError(
            f"{state.name}'s instances have {state.instance_memory_mb} MB; the bundle was verified in {verified} MB",
            f"rebuild with --instance-memory {state.instance_memory_mb} to check the model fits, or give the app larger instances",
        )


def _plan_canary(session: AzureSession, state: AppState, package: AzurePackage, percent: float, package_container: str | None) -> AzurePlan:
    """The package on the staging slot, then ``percent`` of production's traffic routed to it;
    production keeps serving the rest, unchanged."""
    slot = state.slot
    if slot is not None and slot.sha == package.sha and state.canary_percent == percent:
        return AzurePlan("deploy", state, [], package)
    container_url, connection = _packages_container(session, state, package_container)
    plan = AzurePlan("deploy", state, [], package, memo={"connection_string": connection})
    host = slot.host_name if slot else f"{state.name}-{CANARY_SLOT}.azurewebsites.net"
    if slot is None:
        plan.steps.append(CreateSlot(CANARY_SLOT, state.location, state.server_farm_id))
    if slot is None or slot.sha != package.sha:
        plan.steps += [
            UploadPackage(container_url, f"{session.target.app}/{package.sha}.zip", package.sha, package.path),
            PointAppAtPackage(package.sha, None, None, slot=CANARY_SLOT),
            SyncTriggers(CANARY_SLOT),
        ]
    plan.steps.append(RouteTraffic(CANARY_SLOT, host, percent))
    return plan


def plan_promotion(session: AzureSession) -> AzurePlan:
    """The canary's package to production (the replaced one kept for rollback), then all traffic there."""
    state = read_state(session)
    if state.plan == "flex" or not state.canary_percent or state.slot is None or not state.slot.package_url:
        raise MpackError(f"no canary is running on {state.name}", "start one with mpack deploy BUNDLE --platform azure --canary PCT (slot plans only)")
    slot = state.slot
    steps = [
        PointAppAtPackage(slot.sha, state.settings.get(RUN_FROM_PACKAGE), state.serving_sha, package_url=slot.package_url),
        SyncTriggers(),
        RouteTraffic(CANARY_SLOT, slot.host_name, 0),
    ]
    return AzurePlan("promote", state, steps)


def plan_rollback(session: AzureSession) -> AzurePlan:
    state = read_state(session)
    if state.canary_percent and state.slot is not None:  # production never changed: take the traffic back
        return AzurePlan("rollback", state, [RouteTraffic(CANARY_SLOT, state.slot.host_name, 0)])
    if not state.previous_sha:
        raise MpackError(f"{state.name} has no earlier package recorded by mpack", "roll back by deploying the bundle you want (mpack deploy OLD.zip)")
    if state.plan == "flex":
        if state.previous_sha not in state.archived:
            raise MpackError(f"the previous package {state.previous_sha[:12]} is no longer in the deployment container", "deploy the bundle you want instead")
        released_url = state.container_url.rstrip("/") + "/released-package.zip"
        steps = [ReleasePackage(state.container_url, state.previous_sha, state.serving_sha, "rollback"), OneDeploy(released_url), SyncTriggers()]
        return AzurePlan("rollback", state, steps)
    previous_url = state.settings.get(SETTING_PREVIOUS)
    steps = [PointAppAtPackage(state.previous_sha, state.settings.get(RUN_FROM_PACKAGE), state.serving_sha, package_url=previous_url), SyncTriggers()]
    return AzurePlan("rollback", state, steps)


def apply(session: AzureSession, plan: AzurePlan, smoke=None) -> AzurePlan:
    """Smoke-test first (nothing changed if it fails), then every step in order; a failing step is
    named with what still serves."""
    if smoke is not None and plan.package is not None and plan.steps:
        plan.done.append(smoke(plan.package))
    for number, step in enumerate(plan.steps, 1):
        try:
            with azure_call(step.describe()):
                step.apply(session, plan.memo)
        except MpackError as error:
            serving = plan.state.serving_sha[:12] if plan.state.serving_sha else "the earlier package"
            moved = any(isinstance(s, (ReleasePackage, PointAppAtPackage)) for s in plan.steps[: number - 1])
            where = "the new package is released; rerun the deploy to finish" if moved else f"{serving} still serves"
            raise MpackError(f"step {number} failed ({shown(step.describe())}): {error.message}", f"{where}. {error.hint or ''}".strip()) from None
        plan.done.append(step.describe())
    return plan


def local_smoke(package: AzurePackage) -> str:
    """The package answers its input example on the local Functions host (the bundle's Python must
    be this machine's)."""
    from mpack.infra.functions_host.app_run import send, started_zip
    from mpack.infra.local.local_bundle import check_compatible

    try:
        check_compatible(package.manifest, package.path)
    except MpackError as error:
        raise MpackError(f"smoke test: {error.message}", "run the deploy on a machine with the bundle's Python, or pass --smoke-test none") from None
    example = package.manifest.get("input_example")
    if example is None:
        raise MpackError("the bundle has no input example to smoke-test with", "pass --smoke-test none to deploy without one")
    with started_zip(package.path, "mpack-smoke") as (host, failed):
        if failed is not None:
            raise MpackError(f"smoke test: the package fails to start: {failed.error}", "nothing was changed on Azure; fix the bundle and deploy again")
        answer = send(host, json.dumps(example).encode())
    if answer.status != 200 or b"predictions" not in answer.body:
        raise MpackError(f"smoke test: the package answered its input example with HTTP {answer.status}: {answer.body[:300]!r}", "nothing was changed on Azure; fix the bundle and deploy again")
    return f"smoke test: the package answered its input example on the local Functions host ({answer.duration_ms:.1f} ms)"


def _packages_container(session: AzureSession, state: AppState, given: str | None) -> tuple[str, str | None]:
    """Where run-from-package zips go: --package-container, else the app's own storage account."""
    connection = session.target.storage_connection_string or state.settings.get("AzureWebJobsStorage")
    if given:
        return given, connection
    if not connection or "AccountKey=" not in connection:
        raise MpackError(
            f"{state.name} has no storage connection string to hold its packages",
            "pass --package-container https://ACCOUNT.blob.core.windows.net/CONTAINER and --storage-connection-string for that account",
        )
    from azure.storage.blob import BlobServiceClient

    with azure_call("open the app's storage account"):
        url = BlobServiceClient.from_connection_string(connection).url.rstrip("/")
    return f"{url}/{PACKAGES_CONTAINER}", connection
