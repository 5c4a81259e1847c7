"""What the deploy wants and what AWS has, as plain data. The state is read from AWS itself (a CI
runner starts empty, so state lives where the function lives); the alias's description records the
version it served before mpack last moved it, which is what ``mpack rollback`` returns to."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.aws.session import Aws, aws_error

PREVIOUS = re.compile(r"previous=(\d+)")
SINCE = re.compile(r"since=(\d+)")


@dataclass(frozen=True)
class DesiredFunction:
    name: str
    zip_path: Path
    code_sha256: str  # base64 sha256 of the zip, as Lambda reports CodeSha256
    handler: str
    runtime: str  # python3.11
    arch: str  # x86_64 | arm64
    memory_mb: int
    timeout_s: int
    environment: dict
    alias: str
    canary_percent: float | None
    role_arn: str | None
    reserved: int | None
    function_url: str  # none (remove mpack's) | iam | public | keep (leave it as it is)
    bucket: str | None
    input_example: dict
    model: str  # for descriptions: "fraud 3 (models:/fraud@champion)"
    provisioned: int | None = None
    image: "DesiredImage | None" = None  # image deploys (then zip_path/code_sha256 are unused)
    snapstart: bool | None = None  # on for published versions / off / None: leave it as it is

    def configuration(self) -> dict:
        """The settings compared with, and sent to, UpdateFunctionConfiguration (images carry their
        own handler and runtime)."""
        settings = {"MemorySize": self.memory_mb, "Timeout": self.timeout_s, "Environment": {"Variables": dict(self.environment)}}
        if self.snapstart is not None:
            settings["SnapStart"] = {"ApplyOn": "PublishedVersions" if self.snapstart else "None"}
        return settings if self.image else {"Handler": self.handler, "Runtime": self.runtime, **settings}


@dataclass(frozen=True)
class DesiredImage:
    local: str  # the lambda-image tag on this machine
    repository: str  # ECR repository name
    registry: str  # host[:port] the repository lives on
    tag: str  # immutable, derived from the image's content
    pushed_uri: str | None  # registry/repository@sha256:... when this content is already pushed


@dataclass(frozen=True)
class AliasState:
    version: str
    weights: dict  # additional version -> weight (0-1)
    revision_id: str | None
    previous: str | None  # the version served before mpack last moved it
    since: int | None = None  # a canary: when it started (epoch seconds), which its bake counts from


@dataclass(frozen=True)
class FunctionState:
    exists: bool
    arn: str | None = None
    code_sha256: str | None = None
    configuration: dict = field(default_factory=dict)
    role_arn: str | None = None
    last_update: str | None = None
    revision_id: str | None = None  # the function's, for optimistic concurrency on its first update
    versions: dict = field(default_factory=dict)  # version -> CodeSha256
    # version -> the settings it was published with (configuration() keys plus "Role"): a version is
    # reused only when its code *and* its settings are what is wanted (an interrupted deploy leaves
    # $LATEST configured but unpublished; the old version with the same code has the old settings).
    version_settings: dict = field(default_factory=dict)
    alias: AliasState | None = None
    url_auth: str | None = None  # AWS_IAM | NONE | None (no URL)
    reserved: int | None = None
    provisioned: int | None = None  # on the alias (read only when the deploy asks for it)
    image_uri: str | None = None  # image functions: the digest-pinned image they run
    file_systems: tuple = ()  # EFS mounts (FileSystemConfigs): SnapStart refuses them
    ephemeral_mb: int = 512  # /tmp size: SnapStart allows 512 MB at most
    descriptions: dict = field(default_factory=dict)  # version -> its description (mpack records the model it serves there)

    def version_like_latest(self) -> str | None:
        """The newest published version with $LATEST's code and settings, if any."""
        wanted = dict(self.configuration, Role=self.role_arn)
        matching = [int(v) for v, sha in self.versions.items() if v != "$LATEST" and sha == self.code_sha256 and _comparable(self.version_settings.get(v), wanted)]
        return str(max(matching)) if matching else None


def _comparable(settings: dict | None, wanted: dict) -> bool:
    return settings is not None and all(settings.get(key) == value for key, value in wanted.items())


def settings_of(config: dict) -> dict:
    """The settings mpack manages, as GetFunction / ListVersionsByFunction report them."""
    current = {key: config.get(key) for key in ("Handler", "Runtime", "MemorySize", "Timeout") if key in config}
    current["Environment"] = {"Variables": (config.get("Environment") or {}).get("Variables") or {}}
    current["SnapStart"] = {"ApplyOn": (config.get("SnapStart") or {}).get("ApplyOn") or "None"}
    return current


def code_sha256(zip_path: Path) -> str:
    with open(zip_path, "rb") as handle:
        return base64.b64encode(hashlib.file_digest(handle, "sha256").digest()).decode()


def read_state(aws: Aws, name: str, alias: str, provisioned: bool = False) -> FunctionState:
    client = aws.lambda_
    try:
        function = client.get_function(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        return FunctionState(exists=False)
    except Exception as exc:  # noqa: BLE001 - translated with context
        raise aws_error(exc, f"read function {name}") from None
    config = function["Configuration"]
    try:
        versions, version_settings, descriptions = {}, {}, {}
        for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=name):
            versions.update({v["Version"]: v["CodeSha256"] for v in page["Versions"]})
            descriptions.update({v["Version"]: v.get("Description") or "" for v in page["Versions"]})
            version_settings.update({v["Version"]: dict(settings_of(v), Role=v.get("Role")) for v in page["Versions"]})
        alias_state = _alias(client, name, alias)
        url_auth = _url_auth(client, name, alias)
        reserved = client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
        provisioned_count = _provisioned(client, name, alias) if provisioned and alias_state else None
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, f"read the versions and alias of {name}") from None
    current = settings_of(config)
    return FunctionState(
        exists=True,
        arn=config["FunctionArn"],
        code_sha256=config["CodeSha256"],
        configuration=current,
        role_arn=config.get("Role"),
        last_update=config.get("LastUpdateStatus"),
        revision_id=config.get("RevisionId"),
        versions=versions,
        version_settings=version_settings,
        alias=alias_state,
        url_auth=url_auth,
        reserved=reserved,
        provisioned=provisioned_count,
        image_uri=(function.get("Code") or {}).get("ImageUri"),
        file_systems=tuple(c.get("Arn", "") for c in config.get("FileSystemConfigs") or ()),
        ephemeral_mb=(config.get("EphemeralStorage") or {}).get("Size") or 512,
        descriptions=descriptions,
    )


def _alias(client, name: str, alias: str) -> AliasState | None:
    try:
        found = client.get_alias(FunctionName=name, Name=alias)
    except client.exceptions.ResourceNotFoundException:
        return None
    weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    previous, since = PREVIOUS.search(found.get("Description") or ""), SINCE.search(found.get("Description") or "")
    return AliasState(found["FunctionVersion"], dict(weights), found.get("RevisionId"), previous.group(1) if previous else None, int(since.group(1)) if since else None)


def _url_auth(client, name: str, alias: str) -> str | None:
    try:
        return client.get_function_url_config(FunctionName=name, Qualifier=alias)["AuthType"]
    except client.exceptions.ResourceNotFoundException:
        return None


def _provisioned(client, name: str, alias: str) -> int | None:
    try:
        return client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=alias).get("RequestedProvisionedConcurrentExecutions")
    except client.exceptions.ProvisionedConcurrencyConfigNotFoundException:
        return None
