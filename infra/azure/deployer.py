"""Deploy, then roll back, an azure bundle: plan from the platform's state, then apply the same plan
with the one executor (``mpack.infra.plan``), as the AWS deployer does.

As on AWS, the smoke test is a step between staging the new package and moving traffic to it: the
package is kept (Flex) or uploaded (run from package) or put on the canary slot, smoke-tested, and
only then released, pointed at, or routed to. Every deployed package is kept, and the one it replaced
is recorded where the platform keeps its own state, so ``mpack rollback`` can point back. An
unchanged redeploy plans nothing.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.azure.app_state import CANARY_SLOT, PACKAGES_CONTAINER, RUN_FROM_PACKAGE, SETTING_PREVIOUS, AppState, read_state
from mpack.infra.azure.session import AzureSession, azure_call, sdk
from mpack.infra.azure.steps import ArchivePackage, ArchiveServing, AzureContext, CreateSlot, OneDeploy, PointAppAtPackage, ReleasePackage, RouteTraffic, SmokeTest, SyncTriggers, UploadPackage, shown
from mpack.infra.errors import MpackError, SmokeTestFailed
from mpack.infra.functions_host.app_config import instance_memory_mb
from mpack.infra.plan import Plan, Record, StepOutcome, execute


@dataclass(frozen=True)
class AzurePackage:
    path: Path
    sha: str
    model: str  # "name:version"
    manifest: dict


@dataclass(frozen=True)
class AppPlan(Plan):
    """A plan for one function app, with the state it was planned from and the package it deploys."""

    state: AppState
    package: AzurePackage | None = None

    def serving(self) -> str:
        return f"package {self.state.serving_sha[:12]}" if self.state.serving_sha else "the earlier package"

    def to_dict(self, record: Record | None = None) -> dict:
        done = [shown(line) for line in record.lines] if record else []
        return {"ok": True, "platform": "azure", "action": self.action, "state": self.state.describe(), "steps": self.descriptions(), "done": done}


def read_package(bundle: Path) -> AzurePackage:
    from mpack.handlers.errors import ModelLoadError
    from mpack.handlers.manifest import MANIFEST_NAME, Manifest

    if not bundle.is_file():
        raise MpackError(f"{bundle} is not a bundle zip", "deploy a zip from mpack build --target azure")
    try:
        with zipfile.ZipFile(bundle) as archive:
            manifest = Manifest.from_bytes(archive.read(MANIFEST_NAME), f"{bundle}:{MANIFEST_NAME}").served()
    except (zipfile.BadZipFile, KeyError, ModelLoadError) as exc:
        raise MpackError(f"{bundle} is not an mpack bundle ({exc})", "build it with mpack build --target azure") from None
    if manifest["target"] != "azure":
        raise MpackError(f"{bundle} was built for --target {manifest['target']}, not azure", "build it with mpack build --target azure")
    with open(bundle, "rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
    return AzurePackage(bundle, sha, f"{manifest['model']['name']}:{manifest['model']['version']}", manifest)


def plan_deployment(session: AzureSession, package: AzurePackage, canary: float | None, package_container: str | None) -> AppPlan:
    state = read_state(session)
    check_fits(state, package)
    if canary is not None:
        _check_canary(state, canary)
        return _plan_canary(session, state, package, canary, package_container)
    if state.canary_percent:
        raise MpackError(
            f"a canary is running on {state.name} ({state.canary_percent:g}% on slot {CANARY_SLOT})",
            "finish it first: mpack promote --platform azure ... (or mpack rollback --platform azure ...)",
        )
    if state.serving_sha == package.sha:
        return AppPlan("deploy", (), state, package)
    if state.plan == "flex":
        return AppPlan("deploy", _flex_steps(state, package), state, package)
    return AppPlan("deploy", _package_url_steps(session, state, package, package_container), state, package)


def _check_canary(state: AppState, canary: float) -> None:
    if state.plan == "flex":
        raise MpackError(
            "--canary needs deployment slots, and Flex Consumption has none",
            "deploy to a second Flex app and split traffic in front of it (Front Door / API Management), or drop --canary",
        )
    if not 0 < canary < 100:
        raise MpackError(f"--canary {canary:g} is not a percentage between 0 and 100", "e.g. --canary 10")


def _flex_steps(state: AppState, package: AzurePackage) -> list:
    """Keep what serves and the new package, smoke-test it, then release it (it serves at once)."""
    steps: list = []
    if state.serving_unmanaged:
        steps.append(ArchiveServing(state.container_url))
    if package.sha not in state.archived:
        steps.append(ArchivePackage(state.container_url, package.sha, package.path, package.model))
    released_url = state.container_url.rstrip("/") + "/released-package.zip"
    return [*steps, SmokeTest(package.sha), ReleasePackage(state.container_url, package.sha, state.serving_sha, package.model), OneDeploy(released_url), SyncTriggers()]


def _package_url_steps(session: AzureSession, state: AppState, package: AzurePackage, package_container: str | None) -> list:
    """Upload the package, smoke-test it, then point the app at it."""
    return [
        _upload(session, state, package, package_container),
        SmokeTest(package.sha),
        PointAppAtPackage(package.sha, state.settings.get(RUN_FROM_PACKAGE), state.serving_sha),
        SyncTriggers(),
    ]


def _upload(session: AzureSession, state: AppState, package: AzurePackage, package_container: str | None) -> UploadPackage:
    container_url, connection = packages_container(session, state, package_container)
    return UploadPackage(container_url, f"{session.target.app}/{package.sha}.zip", package.sha, package.path, connection, package.model)


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


def _plan_canary(session: AzureSession, state: AppState, package: AzurePackage, percent: float, package_container: str | None) -> AppPlan:
    """The package on the staging slot, smoke-tested, then ``percent`` of production's traffic routed
    to it; production keeps serving the rest, unchanged."""
    slot = state.slot
    if slot is not None and slot.sha == package.sha and state.canary_percent == percent:
        return AppPlan("deploy", (), state, package)
    steps: list = []
    host = slot.host_name if slot else f"{state.name}-{CANARY_SLOT}.azurewebsites.net"
    if slot is None:
        steps.append(CreateSlot(CANARY_SLOT, state.location, state.server_farm_id))
    if slot is None or slot.sha != package.sha:
        steps += [_upload(session, state, package, package_container), PointAppAtPackage(package.sha, None, None, slot=CANARY_SLOT), SyncTriggers(CANARY_SLOT)]
    return AppPlan("deploy", [*steps, SmokeTest(package.sha), RouteTraffic(CANARY_SLOT, host, percent)], state, package)


def plan_promotion(session: AzureSession) -> AppPlan:
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
    return AppPlan("promote", steps, state)


def plan_rollback(session: AzureSession) -> AppPlan:
    state = read_state(session)
    if state.canary_percent and state.slot is not None:  # production never changed: take the traffic back
        return AppPlan("rollback", [RouteTraffic(CANARY_SLOT, state.slot.host_name, 0)], state)
    if not state.previous_sha:
        raise MpackError(f"{state.name} has no earlier package recorded by mpack", "roll back by deploying the bundle you want (mpack deploy OLD.zip)")
    if state.plan == "flex":
        if state.previous_sha not in state.archived:
            raise MpackError(f"the previous package {state.previous_sha[:12]} is no longer in the deployment container", "deploy the bundle you want instead")
        released_url = state.container_url.rstrip("/") + "/released-package.zip"
        steps = [ReleasePackage(state.container_url, state.previous_sha, state.serving_sha, "rollback"), OneDeploy(released_url), SyncTriggers()]
        return AppPlan("rollback", steps, state)
    previous_url = state.settings.get(SETTING_PREVIOUS)
    steps = [PointAppAtPackage(state.previous_sha, state.settings.get(RUN_FROM_PACKAGE), state.serving_sha, package_url=previous_url), SyncTriggers()]
    return AppPlan("rollback", steps, state)


def plan_kept_package(session: AzureSession, sha: str, model: str, package_container: str | None) -> AppPlan:
    """Production serves again a package mpack kept (it passed its smoke test when it was deployed): no upload,
    no smoke test. Refused while a canary runs, as a deploy is."""
    state = read_state(session)
    if state.canary_percent:
        raise MpackError(f"a canary is running on {state.name} ({state.canary_percent:g}% on slot {CANARY_SLOT})", "finish it first: mpack promote --platform azure ... (or mpack rollback --platform azure ...)")
    if state.serving_sha == sha:
        return AppPlan("serve", (), state)
    if state.plan == "flex":
        if sha not in state.archived:
            raise MpackError(f"package {sha[:12]} is no longer in the deployment container", "deploy its bundle instead")
        released_url = state.container_url.rstrip("/") + "/released-package.zip"
        return AppPlan("serve", (ReleasePackage(state.container_url, sha, state.serving_sha, model), OneDeploy(released_url), SyncTriggers()), state)
    from mpack.infra.azure.steps import read_only_url  # here: the import line above is at its width

    container_url, connection = packages_container(session, state, package_container)
    container, blob = session.container(container_url, connection), f"{session.target.app}/{sha}.zip"
    with azure_call(f"read the kept package {blob}"):
        if not container.get_blob_client(blob).exists():
            raise MpackError(f"package {sha[:12]} is no longer in {container_url}", "deploy its bundle instead")
        url = read_only_url(container, blob)
    return AppPlan("serve", (PointAppAtPackage(sha, state.settings.get(RUN_FROM_PACKAGE), state.serving_sha, package_url=url), SyncTriggers()), state)


def apply(session: AzureSession, plan: AppPlan, smoke: Callable[[AzurePackage], str] | None = None, progress: Callable[[StepOutcome], None] | None = None) -> Record:
    """Run the plan with the one executor; a failing step is named with what was done and what still
    serves. ``smoke`` checks the package where the plan's SmokeTest step stands (None: skipped)."""
    package = plan.package
    check = (lambda: smoke(package)) if smoke is not None and package is not None else _no_smoke
    return execute(plan, AzureContext(session, check), progress, guard=azure_call)


def _no_smoke() -> str:
    return "smoke test: skipped (--smoke-test none)"


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
            raise SmokeTestFailed(f"smoke test: the package fails to start: {failed.error}", "traffic was not moved to it; fix the bundle and deploy again")
        answer = send(host, json.dumps(example).encode())
    if answer.status != 200 or b"predictions" not in answer.body:
        raise SmokeTestFailed(f"smoke test: the package answered its input example with HTTP {answer.status}: {answer.body[:300]!r}", "traffic was not moved to it; fix the bundle and deploy again")
    return f"smoke test: the package answered its input example on the local Functions host ({answer.duration_ms:.1f} ms)"


def packages_container(session: AzureSession, state: AppState, given: str | None) -> tuple[str, str | None]:
    """Where run-from-package zips go: --package-container, else the app's own storage account."""
    connection = session.target.storage_connection_string or state.settings.get("AzureWebJobsStorage")
    if given:
        return given, connection
    if not connection or "AccountKey=" not in connection:
        raise MpackError(
            f"{state.name} has no storage connection string to hold its packages",
            "pass --package-container https://ACCOUNT.blob.core.windows.net/CONTAINER and --storage-connection-string for that account",
        )
    with azure_call("open the app's storage account"):
        url = sdk("azure.storage.blob").BlobServiceClient.from_connection_string(connection).url.rstrip("/")
    return f"{url}/{PACKAGES_CONTAINER}", connection
