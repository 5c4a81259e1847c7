"""``mpack export --format bicep|arm`` for an azure bundle: a Flex Consumption app that serves it.

One description of the resources (a storage account with the deployment container, the FC1 plan,
the Linux function app with a system identity, and the identity's role on the storage) rendered two
ways: an ARM template (JSON, expressions in ``[...]``) and Bicep. The values that refer to other
resources are small expression objects, so both renderings come from the same data. Deploy the
template once (``az deployment group create``); then ``mpack deploy`` ships packages to the app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mpack.infra.functions_host.app_config import INSTANCE_MEMORY_MB, instance_memory_mb

FORMATS = ("bicep", "arm")
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"  # built-in role: the deployment container and AzureWebJobsStorage by identity
API = {"storage": "2023-05-01", "web": "2024-04-01", "role": "2022-04-01"}


# -- expressions: (ARM text inside [...], Bicep text) -------------------------------------------


@dataclass(frozen=True)
class Expr:
    arm: str  # inside an ARM expression
    bicep: str


def param(name: str) -> Expr:
    return Expr(f"parameters('{name}')", name)


def literal(text: str) -> Expr:
    return Expr("'" + text.replace("'", "''") + "'", "'" + text.replace("'", "\\'") + "'")


def concat(*parts: Expr | str) -> Expr:
    items = [literal(p) if isinstance(p, str) else p for p in parts]
    bicep = "'" + "".join(p.bicep[1:-1] if p.bicep.startswith("'") and p.bicep.endswith("'") else "${" + p.bicep + "}" for p in items) + "'"
    return Expr(f"concat({', '.join(p.arm for p in items)})", bicep)


def raw(arm: str, bicep: str) -> Expr:
    return Expr(arm, bicep)


@dataclass(frozen=True)
class Resource:
    symbol: str  # Bicep's symbolic name
    type: str
    api: str
    name: Expr  # the full ARM name (parent/child for nested resources)
    body: dict  # everything but type/apiVersion/name: may hold Expr values
    depends: tuple[str, ...] = ()
    parent: str | None = None  # Bicep: declared with parent, named by its last segment
    short_name: Expr | None = None
    segments: tuple[Expr, ...] = ()  # nested resources: each name segment, for resourceId()

    def id(self) -> Expr:
        parts = ", ".join(s.arm for s in self.segments) if self.segments else self.name.arm
        return Expr(f"resourceId('{self.type}', {parts})", f"{self.symbol}.id")

    def prop(self, path: str, full: bool = False) -> Expr:
        """``properties.<path>`` (or, with ``full``, a top-level path such as ``identity.principalId``)."""
        mode = ", 'full'" if full else ""
        arm = f"reference({self.id().arm}, '{self.api}'{mode}).{path}"
        return Expr(arm, f"{self.symbol}.{path}" if full else f"{self.symbol}.properties.{path}")


def resources(manifest: dict, python: str) -> tuple[dict, list[Resource]]:
    """(parameters, resources) of a Flex Consumption app for this bundle."""
    storage_name = concat("mpack", raw("uniqueString(resourceGroup().id)", "uniqueString(resourceGroup().id)"))
    container_name = concat("app-package-", raw("take(parameters('appName'), 32)", "take(appName, 32)"))
    storage, plan = _storage(storage_name), _plan()
    site = _function_app(plan, storage, storage_name, container_name, python)
    items = [storage, _blob_service(storage_name), _deployment_container(storage_name, container_name), plan, site, _storage_role(storage, site, storage_name)]
    return _parameters(manifest), items


def _parameters(manifest: dict) -> dict:
    """The template's parameters: the app's name (from the model's), location, scale and instance memory."""
    model = manifest["model"]
    memory = instance_memory_mb(manifest)
    return {
        "appName": {
            "type": "string",
            "defaultValue": f"{model['name']}-{model['version']}".lower().replace("_", "-")[:40],
            "metadata": {"description": "The function app's name (globally unique: <name>.azurewebsites.net)."},
        },
        "location": {"type": "string", "defaultValue": raw("resourceGroup().location", "resourceGroup().location")},
        "maximumInstanceCount": {"type": "int", "defaultValue": 100},
        "instanceMemoryMB": {"type": "int", "defaultValue": memory, "allowedValues": list(INSTANCE_MEMORY_MB)},
    }


def _storage(storage_name: Expr) -> Resource:
    """The account holding the deployment container and the host's state: no public blobs, no shared keys."""
    return Resource(
        "storage",
        "Microsoft.Storage/storageAccounts",
        API["storage"],
        storage_name,
        {
            "location": param("location"),
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS"},
            "properties": {"minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True, "allowBlobPublicAccess": False, "allowSharedKeyAccess": False},
        },
    )


def _blob_service(storage_name: Expr) -> Resource:
    return Resource(
        "blobService",
        "Microsoft.Storage/storageAccounts/blobServices",
        API["storage"],
        concat(storage_name, "/default"),
        {},
        ("storage",),
        "storage",
        literal("default"),
        (storage_name, literal("default")),
    )


def _deployment_container(storage_name: Expr, container_name: Expr) -> Resource:
    """Where Flex Consumption reads the released package (private)."""
    return Resource(
        "deploymentContainer",
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        API["storage"],
        concat(storage_name, "/default/", container_name),
        {"properties": {"publicAccess": "None"}},
        ("blobService",),
        "blobService",
        container_name,
        (storage_name, literal("default"), container_name),
    )


def _plan() -> Resource:
    return Resource(
        "plan",
        "Microsoft.Web/serverfarms",
        API["web"],
        concat(param("appName"), "-plan"),
        {"location": param("location"), "kind": "functionapp", "sku": {"tier": "FlexConsumption", "name": "FC1"}, "properties": {"reserved": True}},
    )


def _function_app(plan: Resource, storage: Resource, storage_name: Expr, container_name: Expr, python: str) -> Resource:
    """The Linux app with a system identity, reading its packages from the container by that identity."""
    return Resource(
        "functionApp",
        "Microsoft.Web/sites",
        API["web"],
        param("appName"),
        {
            "location": param("location"),
            "kind": "functionapp,linux",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "serverFarmId": plan.id(),
                "httpsOnly": True,
                "siteConfig": {"minTlsVersion": "1.2", "appSettings": [{"name": "AzureWebJobsStorage__accountName", "value": storage_name}]},
                "functionAppConfig": {
                    "deployment": {"storage": {"type": "blobContainer", "value": concat(storage.prop("primaryEndpoints.blob"), container_name), "authentication": {"type": "SystemAssignedIdentity"}}},
                    "scaleAndConcurrency": {"maximumInstanceCount": param("maximumInstanceCount"), "instanceMemoryMB": param("instanceMemoryMB")},
                    "runtime": {"name": "python", "version": python},
                },
            },
        },
        ("plan", "storage", "deploymentContainer"),
    )


def _storage_role(storage: Resource, site: Resource, storage_name: Expr) -> Resource:
    """The app's identity as Storage Blob Data Owner on the account (packages and host state without keys)."""
    return Resource(
        "storageRole",
        "Microsoft.Authorization/roleAssignments",
        API["role"],
        raw(f"guid({storage.id().arm}, {site.id().arm}, '{STORAGE_BLOB_DATA_OWNER}')", f"guid(storage.id, functionApp.id, '{STORAGE_BLOB_DATA_OWNER}')"),
        {
            "scope": raw(f"format('Microsoft.Storage/storageAccounts/{{0}}', {storage_name.arm})", "storage"),
            "properties": {
                "roleDefinitionId": raw(
                    f"subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{STORAGE_BLOB_DATA_OWNER}')",
                    f"subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{STORAGE_BLOB_DATA_OWNER}')",
                ),
                "principalId": site.prop("identity.principalId", full=True),
                "principalType": "ServicePrincipal",
            },
        },
        ("functionApp", "storage"),
    )


def export_azure(manifest: dict, fmt: str) -> str:
    python = manifest["runtime"]["python"]
    parameters, items = resources(manifest, python)
    if fmt == "arm":
        return json.dumps(_arm(parameters, items), indent=2) + "\n"
    return _bicep(parameters, items, manifest)


# -- ARM ------------------------------------------------------------------------------------------


def _arm(parameters: dict, items: list[Resource]) -> dict:
    symbols = {r.symbol: r for r in items}
    out = []
    for resource in items:
        entry = {"type": resource.type, "apiVersion": resource.api, "name": f"[{resource.name.arm}]"}
        for key, value in resource.body.items():
            entry[key] = _arm_value(value)
        if resource.depends:
            entry["dependsOn"] = [f"[{symbols[s].id().arm}]" for s in resource.depends]
        out.append(entry)
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {k: {kk: _arm_value(vv) for kk, vv in v.items()} for k, v in parameters.items()},
        "resources": out,
        "outputs": {"functionAppName": {"type": "string", "value": "[parameters('appName')]"}},
    }


def _arm_value(value):
    if isinstance(value, Expr):
        return f"[{value.arm}]"
    if isinstance(value, dict):
        return {k: _arm_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arm_value(v) for v in value]
    return value


# -- Bicep ----------------------------------------------------------------------------------------


def _bicep(parameters: dict, items: list[Resource], manifest: dict) -> str:
    model = manifest["model"]
    lines = [f"// mpack: a Flex Consumption function app for {model['name']} version {model['version']} (deploy packages with mpack deploy)", ""]
    for name, spec in parameters.items():
        kind = spec["type"]
        description = spec.get("metadata", {}).get("description")
        if description:
            lines.append(f"@description({_bicep_value(description, 0)})")
        if "allowedValues" in spec:
            lines.append(f"@allowed({_bicep_value(spec['allowedValues'], 0)})")
        lines.append(f"param {name} {kind} = {_bicep_value(spec['defaultValue'], 0)}")
    lines.append("")
    for resource in items:
        lines.append(f"resource {resource.symbol} '{resource.type}@{resource.api}' = {{")
        if resource.parent:
            lines.append(f"  parent: {resource.parent}")
            lines.append(f"  name: {(resource.short_name or resource.name).bicep}")
        else:
            lines.append(f"  name: {resource.name.bicep}")
        for key, value in resource.body.items():
            lines.append(f"  {key}: {_bicep_value(value, 1)}")
        lines.append("}")
        lines.append("")
    lines.append("output functionAppName string = functionApp.name")
    return "\n".join(lines) + "\n"


def _bicep_value(value, depth: int) -> str:
    pad = "  " * depth
    if isinstance(value, Expr):
        return value.bicep
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, dict):
        inner = "".join(f"{pad}  {k}: {_bicep_value(v, depth + 1)}\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, list):
        inner = "".join(f"{pad}  {_bicep_value(v, depth + 1)}\n" for v in value)
        return "[\n" + inner + pad + "]"
    raise TypeError(f"no Bicep form for {type(value).__name__}")
