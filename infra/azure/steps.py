"""The typed steps of an Azure deploy plan (``mpack.infra.plan``'s contract): each says what it will do
(``describe``, for ``--plan``) and does it (``apply``). The executor shows or applies the same list,
never a recomputed one; steps hand values on through the ``AzureContext``, never through the plan."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from mpack.infra.azure.app_state import ARCHIVE_PREFIX, MODEL_KEY, PREVIOUS_KEY, RELEASED_BLOB, RUN_FROM_PACKAGE, SETTING_CANARY_SINCE, SETTING_PREVIOUS, SETTING_PREVIOUS_SHA, SETTING_SHA, SHA_KEY
from mpack.infra.azure.session import AzureSession, sdk
from mpack.infra.errors import MpackError, redact_credentials

ARM_API_VERSION = "2024-04-01"
ONE_DEPLOY_WAIT_S = 600
SAS_LIFETIME = timedelta(days=3650)  # a run-from-package URL must outlive every cold start of the app


@dataclass
class AzureContext:
    """What the steps of one run share: the session, the package's smoke test, and what earlier steps
    produced for later ones."""

    session: AzureSession
    smoke: Callable[[], str]  # raises MpackError when the package does not answer its input example
    package_url: str | None = None  # UploadPackage's read-only SAS URL, for PointAppAtPackage
    previous_sha: str | None = None  # ArchiveServing's sha of the unmanaged package, for ReleasePackage


def _archive_name(sha: str) -> str:
    return f"{ARCHIVE_PREFIX}{sha}.zip"


@dataclass(frozen=True)
class ArchiveServing:
    """Keep the package serving now (deployed by another tool) before anything replaces it."""

    container_url: str

    def describe(self) -> str:
        return f"keep the package serving now ({RELEASED_BLOB}, not deployed by mpack) as {ARCHIVE_PREFIX}<its sha256>.zip"

    def apply(self, ctx: AzureContext) -> None:
        container = ctx.session.container(self.container_url)
        data = container.get_blob_client(RELEASED_BLOB).download_blob().readall()
        sha = hashlib.sha256(data).hexdigest()
        container.get_blob_client(_archive_name(sha)).upload_blob(data, overwrite=True, metadata={SHA_KEY: sha, MODEL_KEY: "unmanaged"})
        ctx.previous_sha = sha


@dataclass(frozen=True)
class ArchivePackage:
    container_url: str
    sha: str
    path: Path
    model: str

    def describe(self) -> str:
        return f"upload {self.path.name} ({self.path.stat().st_size / 2**20:.1f} MB, sha256 {self.sha[:12]}) to {self.container_url}/{_archive_name(self.sha)}"

    def apply(self, ctx: AzureContext) -> None:
        _upload(ctx.session.container(self.container_url), _archive_name(self.sha), self.path, {SHA_KEY: self.sha, MODEL_KEY: self.model})


@dataclass(frozen=True)
class ReleasePackage:
    """Make a kept package the one Flex Consumption runs, recording the one it replaces."""

    container_url: str
    sha: str
    previous_sha: str | None
    model: str
    moves_traffic: ClassVar[bool] = True  # on Flex a released package serves at once

    def describe(self) -> str:
        replaced = f" (replacing {self.previous_sha[:12]}, kept for rollback)" if self.previous_sha else ""
        return f"release {self.sha[:12]} as {RELEASED_BLOB} in the deployment container{replaced}"

    def apply(self, ctx: AzureContext) -> None:
        container = ctx.session.container(self.container_url)
        data = container.get_blob_client(_archive_name(self.sha)).download_blob().readall()
        if hashlib.sha256(data).hexdigest() != self.sha:
            raise MpackError(f"the kept package {_archive_name(self.sha)} does not match its sha256", "it was altered in storage; deploy the bundle again")
        previous = ctx.previous_sha or self.previous_sha or ""
        metadata = {SHA_KEY: self.sha, PREVIOUS_KEY: previous, MODEL_KEY: self.model}
        container.get_blob_client(RELEASED_BLOB).upload_blob(data, overwrite=True, metadata=metadata)


@dataclass(frozen=True)
class OneDeploy:
    """Ask the platform to deploy the released package (ARM's ``sites/extensions/onedeploy``)."""

    package_url: str

    def describe(self) -> str:
        return "deploy it: One Deploy (remote build off: the package carries its .python_packages)"

    def apply(self, ctx: AzureContext) -> None:
        HttpRequest = sdk("azure.core.rest").HttpRequest
        target = ctx.session.target
        url = f"/subscriptions/{target.subscription}/resourceGroups/{target.resource_group}/providers/Microsoft.Web/sites/{target.app}/extensions/onedeploy?api-version={ARM_API_VERSION}"
        body = {"properties": {"packageUri": self.package_url, "remoteBuild": False}}
        response = ctx.session.web.send_request(HttpRequest("PUT", url, json=body))
        deadline = time.monotonic() + ONE_DEPLOY_WAIT_S
        while response.status_code == 202 and response.headers.get("Location"):
            if time.monotonic() > deadline:
                raise MpackError(f"One Deploy did not finish within {ONE_DEPLOY_WAIT_S} s", "see the app's deployment log in the portal")
            time.sleep(float(response.headers.get("Retry-After", "2")))
            response = ctx.session.web.send_request(HttpRequest("GET", response.headers["Location"]))
        response.raise_for_status()


@dataclass(frozen=True)
class UploadPackage:
    """Run-from-package plans: the zip in a private container, read through a read-only SAS URL."""

    container_url: str
    blob: str
    sha: str
    path: Path
    connection_string: str | None = field(default=None, repr=False)  # signs the SAS; never shown
    model: str | None = None  # "name:version", recorded on the blob: what the package serves, read back by mpack sync

    def describe(self) -> str:
        return f"upload {self.path.name} ({self.path.stat().st_size / 2**20:.1f} MB) to {self.container_url}/{self.blob} (private; read through a read-only SAS)"

    def apply(self, ctx: AzureContext) -> None:
        container = ctx.session.container(self.container_url, self.connection_string)
        _upload(container, self.blob, self.path, {SHA_KEY: self.sha, **({MODEL_KEY: self.model} if self.model else {})})
        ctx.package_url = read_only_url(container, self.blob)


@dataclass(frozen=True)
class PointAppAtPackage:
    """Set WEBSITE_RUN_FROM_PACKAGE (the app, or its slot, restarts on it); the replaced URL is kept
    for rollback."""

    sha: str
    previous_url: str | None
    previous_sha: str | None
    package_url: str | None = None  # a rollback or promotion names its URL; a deploy takes the upload's
    slot: str | None = None

    @property
    def moves_traffic(self) -> bool:
        return self.slot is None  # production restarts on it; a slot serves no traffic until routed

    def describe(self) -> str:
        kept = f"; the previous package ({(self.previous_sha or 'unmanaged')[:12]}) kept for rollback" if self.previous_url else ""
        where = f"slot {self.slot}" if self.slot else "the app"
        return f"set {RUN_FROM_PACKAGE} of {where} to package {self.sha[:12]} ({where} restarts on it){kept}"

    def apply(self, ctx: AzureContext) -> None:
        StringDictionary = sdk("azure.mgmt.web.models").StringDictionary
        target, apps = ctx.session.target, ctx.session.web.web_apps
        if self.slot:
            settings = dict(apps.list_application_settings_slot(target.resource_group, target.app, self.slot).properties or {})
        else:
            settings = dict(apps.list_application_settings(target.resource_group, target.app).properties or {})
        settings[RUN_FROM_PACKAGE] = self.package_url or ctx.package_url
        settings[SETTING_SHA] = self.sha
        for key, value in ((SETTING_PREVIOUS, self.previous_url), (SETTING_PREVIOUS_SHA, self.previous_sha)):
            if value:
                settings[key] = value
            else:
                settings.pop(key, None)
        if self.slot:
            apps.update_application_settings_slot(target.resource_group, target.app, self.slot, StringDictionary(properties=settings))
        else:
            apps.update_application_settings(target.resource_group, target.app, StringDictionary(properties=settings))


@dataclass(frozen=True)
class SyncTriggers:
    slot: str | None = None

    def describe(self) -> str:
        where = f"slot {self.slot}'s" if self.slot else "the app's"
        return f"sync {where} triggers (the platform re-reads the functions of the new package)"

    def apply(self, ctx: AzureContext) -> None:
        target = ctx.session.target
        if self.slot:
            ctx.session.web.web_apps.sync_function_triggers_slot(target.resource_group, target.app, self.slot)
        else:
            ctx.session.web.web_apps.sync_function_triggers(target.resource_group, target.app)


@dataclass(frozen=True)
class CreateSlot:
    slot: str
    location: str
    server_farm_id: str

    def describe(self) -> str:
        return f"create deployment slot {self.slot} on the app's plan"

    def apply(self, ctx: AzureContext) -> None:
        Site = sdk("azure.mgmt.web.models").Site
        target = ctx.session.target
        envelope = Site(location=self.location, server_farm_id=self.server_farm_id, kind="functionapp,linux", reserved=True)
        ctx.session.web.web_apps.begin_create_or_update_slot(target.resource_group, target.app, self.slot, envelope).result()


@dataclass(frozen=True)
class RouteTraffic:
    """Production's ramp-up rule: ``percent`` of its requests go to the slot (0 removes the rule)."""

    slot: str
    slot_host: str
    percent: float
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        if not self.percent:
            return f"route all traffic to production (remove the ramp-up rule to slot {self.slot})"
        return f"route {self.percent:g}% of production's traffic to slot {self.slot} ({self.slot_host})"

    def apply(self, ctx: AzureContext) -> None:
        models = sdk("azure.mgmt.web.models")
        rules = [models.RampUpRule(name=self.slot, action_host_name=self.slot_host, reroute_percentage=self.percent)] if self.percent else []
        target = ctx.session.target
        if self.percent:  # the canary's start, on its slot (first: a run killed before the rule leaves no canary, and the next sets it again)
            apps = ctx.session.web.web_apps
            settings = dict(apps.list_application_settings_slot(target.resource_group, target.app, self.slot).properties or {})
            settings[SETTING_CANARY_SINCE] = str(int(time.time()))
            apps.update_application_settings_slot(target.resource_group, target.app, self.slot, models.StringDictionary(properties=settings))
        ctx.session.web.web_apps.update_configuration(target.resource_group, target.app, models.SiteConfigResource(experiments=models.Experiments(ramp_up_rules=rules)))


@dataclass(frozen=True)
class SmokeTest:
    """The package answers its input example before traffic moves to it (``--smoke-test``)."""

    sha: str

    def describe(self) -> str:
        return f"smoke-test package {self.sha[:12]} with the model's input example (traffic moves only if it answers)"

    def apply(self, ctx: AzureContext) -> str:
        return ctx.smoke()


def _upload(container, blob: str, path: Path, metadata: dict) -> None:
    """A private container (created when missing) receives the file, streamed."""
    if not container.exists():
        container.create_container()
    with open(path, "rb") as handle:
        container.get_blob_client(blob).upload_blob(handle, overwrite=True, metadata=metadata)


def read_only_url(container, blob: str) -> str:
    """The blob's URL with a read-only SAS signed by the account key of the connection string."""
    storage = sdk("azure.storage.blob")
    credential = container.credential
    key = getattr(credential, "account_key", None)
    if not key:
        raise MpackError("a run-from-package URL needs the storage account key to sign it", "pass --storage-connection-string (or set AZURE_STORAGE_CONNECTION_STRING) for the packages' account")
    expiry = datetime.now(UTC) + SAS_LIFETIME
    sas = storage.generate_blob_sas(container.account_name, container.container_name, blob, account_key=key, permission=storage.BlobSasPermissions(read=True), expiry=expiry)
    return f"{container.get_blob_client(blob).url}?{sas}"


def shown(text: str) -> str:
    return redact_credentials(text)
