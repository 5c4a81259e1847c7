"""What is deployed, read from Azure itself (a CI runner starts empty; the state lives with the app).

Flex Consumption: the app's deployment container (``functionAppConfig.deployment.storage``) holds
``released-package.zip``, the package the platform runs; mpack marks it with the package's sha256 and
the one it replaced, and keeps every package it deployed beside it (``mpack/packages/<sha256>.zip``),
so a rollback needs nothing but the container. Other Linux plans: the app settings
``WEBSITE_RUN_FROM_PACKAGE`` (a read-only SAS URL) plus mpack's own ``MPACK_PACKAGE_SHA256`` and
``MPACK_PREVIOUS_PACKAGE``/``MPACK_PREVIOUS_SHA256``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mpack.infra.azure.session import AzureSession, azure_call, sdk
from mpack.infra.errors import MpackError

RELEASED_BLOB = "released-package.zip"  # the name Flex Consumption's One Deploy reads
ARCHIVE_PREFIX = "mpack/packages/"
PACKAGES_CONTAINER = "mpack-packages"  # run-from-package plans: in the app's own storage account
SHA_KEY, PREVIOUS_KEY, MODEL_KEY = "mpack_sha256", "mpack_previous_sha256", "mpack_model"
RUN_FROM_PACKAGE = "WEBSITE_RUN_FROM_PACKAGE"
CANARY_SLOT = "staging"  # slot plans: where a canary package runs while production keeps serving
SETTING_SHA, SETTING_PREVIOUS, SETTING_PREVIOUS_SHA = "MPACK_PACKAGE_SHA256", "MPACK_PREVIOUS_PACKAGE", "MPACK_PREVIOUS_SHA256"
SETTING_CANARY_SINCE = "MPACK_CANARY_SINCE"  # on the canary slot: when traffic was last routed to it (epoch seconds), which a bake counts from


@dataclass(frozen=True)
class AppState:
    name: str
    plan: str  # "flex" | "package-url"
    host_name: str
    linux: bool
    container_url: str | None = None  # flex: the deployment container
    serving_sha: str | None = None  # what runs now (None: nothing, or not deployed by mpack)
    previous_sha: str | None = None
    serving_unmanaged: bool = False  # a package mpack did not deploy is serving (it is archived first)
    archived: frozenset = frozenset()  # flex: sha256s kept in the container
    settings: dict = field(default_factory=dict)  # package-url plans: the app settings
    location: str = ""
    server_farm_id: str = ""
    slot: "SlotState | None" = None  # package-url plans: the canary slot, if it exists
    canary_percent: float = 0.0  # traffic routed to the slot (production's ramp-up rule)
    python: str | None = None  # the Python the app runs ("3.11"), when Azure says
    instance_memory_mb: int | None = None  # Flex: the app's instance size

    def describe(self) -> dict:
        described = {"app": self.name, "plan": self.plan, "serving_sha256": self.serving_sha, "previous_sha256": self.previous_sha, "host_name": self.host_name}
        if self.canary_percent:
            described["canary"] = {"slot": CANARY_SLOT, "percent": self.canary_percent, "sha256": self.slot.sha if self.slot else None}
        return described


@dataclass(frozen=True)
class SlotState:
    host_name: str
    sha: str | None
    package_url: str | None
    since: int | None = None  # when traffic was routed to it (SETTING_CANARY_SINCE)


def read_state(session: AzureSession) -> AppState:
    app = session.target.app
    with azure_call(f"read function app {app}"):
        site = session.web.web_apps.get(session.target.resource_group, app)
    kind = (site.kind or "").lower()
    if "functionapp" not in kind:
        raise MpackError(f"{app} is not a function app (kind {site.kind!r})", "deploy to an Azure Functions app")
    linux = "linux" in kind or bool(site.reserved)
    if not linux:
        raise MpackError(f"{app} runs on Windows; Python function apps run on Linux only", "create a Linux app (mpack export --format bicep writes one)")
    config = site.function_app_config
    storage = config.deployment.storage if config and config.deployment else None
    host = site.default_host_name or f"{app}.azurewebsites.net"
    if storage is not None and storage.value:
        state = _flex_state(session, app, host, storage.value)
        scale, runtime = config.scale_and_concurrency, config.runtime
        return replace(state, python=runtime.version if runtime else None, instance_memory_mb=scale.instance_memory_mb if scale else None)
    with azure_call(f"read the app settings of {app}"):
        settings = dict(session.web.web_apps.list_application_settings(session.target.resource_group, app).properties or {})
    url = settings.get(RUN_FROM_PACKAGE)
    sha = settings.get(SETTING_SHA) if url else None
    with azure_call(f"read the configuration of {app}"):
        config = session.web.web_apps.get_configuration(session.target.resource_group, app)
    stack = (config.linux_fx_version or "").partition("|")
    slot, percent = _canary(session, app, config)
    return AppState(
        app,
        "package-url",
        host,
        linux,
        serving_sha=sha,
        previous_sha=settings.get(SETTING_PREVIOUS_SHA),
        serving_unmanaged=bool(url) and not sha,
        settings=settings,
        location=site.location or "",
        server_farm_id=site.server_farm_id or "",
        slot=slot,
        canary_percent=percent,
        python=stack[2] if stack[0].lower() == "python" and stack[2] else None,
    )


def _canary(session: AzureSession, app: str, config) -> tuple[SlotState | None, float]:
    """The canary slot (if any) and the share of production's traffic routed to it."""
    ResourceNotFoundError = sdk("azure.core.exceptions").ResourceNotFoundError

    group = session.target.resource_group
    with azure_call(f"read the configuration of {app}"):
        rules = (config.experiments.ramp_up_rules if config.experiments else None) or []
        percent = sum(rule.reroute_percentage or 0 for rule in rules if (rule.name or "").lower() == CANARY_SLOT)
        try:
            slot = session.web.web_apps.get_slot(group, app, CANARY_SLOT)
        except ResourceNotFoundError:
            return None, percent
        settings = dict(session.web.web_apps.list_application_settings_slot(group, app, CANARY_SLOT).properties or {})
    host = slot.default_host_name or f"{app}-{CANARY_SLOT}.azurewebsites.net"
    since = settings.get(SETTING_CANARY_SINCE)
    return SlotState(host, settings.get(SETTING_SHA), settings.get(RUN_FROM_PACKAGE), int(since) if since and since.isdigit() else None), percent


def _flex_state(session: AzureSession, app: str, host: str, container_url: str) -> AppState:
    container = session.container(container_url)
    with azure_call(f"read the deployment container {container_url}"):
        if not container.exists():
            return AppState(app, "flex", host, True, container_url)
        archived = frozenset(b.name[len(ARCHIVE_PREFIX) : -len(".zip")] for b in container.list_blobs(name_starts_with=ARCHIVE_PREFIX) if b.name.endswith(".zip"))
        released = container.get_blob_client(RELEASED_BLOB)
        if not released.exists():
            return AppState(app, "flex", host, True, container_url, archived=archived)
        metadata = released.get_blob_properties().metadata or {}
    sha = metadata.get(SHA_KEY)
    return AppState(app, "flex", host, True, container_url, sha, metadata.get(PREVIOUS_KEY) or None, serving_unmanaged=not sha, archived=archived)
