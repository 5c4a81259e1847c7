"""From (what AWS has, what the deploy wants) to an ordered list of steps — and nothing when nothing
changed: same code (CodeSha256) and configuration, alias already serving that version as asked.

The alias moves only after a version is published and passed its smoke test; a canary keeps the
serving version as primary and gives the new one its weight.
"""

from __future__ import annotations

import hashlib

from mpack.infra.aws.function_state import DesiredFunction, FunctionState
from mpack.infra.aws.steps import (
    ConfigureFunctionUrl,
    CreateFunction,
    CreateRole,
    EnsureRepository,
    MoveAlias,
    PublishVersion,
    PushImage,
    RemoveFunctionUrl,
    SetProvisionedConcurrency,
    SetReservedConcurrency,
    SmokeTest,
    UpdateCode,
    UpdateConfiguration,
    UploadToS3,
    WaitForSnapshot,
    WaitUntilUpdated,
)
from mpack.infra.errors import MpackError

SNAPSTART_EPHEMERAL_MB = 512

DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
URL_AUTH = {"iam": "AWS_IAM", "public": "NONE"}


def plan_deploy(state: FunctionState, desired: DesiredFunction, zip_bytes: int) -> list:
    if desired.snapstart:
        check_snapstart(state, desired)
    steps: list = []
    if desired.role_arn is None and not state.exists:
        steps.append(CreateRole(role_name(desired.name)))
    if desired.image:
        code_changed = not state.exists or desired.image.pushed_uri is None or state.image_uri != desired.image.pushed_uri
        if desired.image.pushed_uri is None:
            steps += [EnsureRepository(desired.image.repository), PushImage()]
    else:
        code_changed = not state.exists or state.code_sha256 != desired.code_sha256
    changed = _changed_settings(state, desired)
    if code_changed and not desired.image and zip_bytes > DIRECT_UPLOAD_LIMIT:
        steps.append(UploadToS3(desired.bucket or f"mpack-artifacts-{desired.name}".lower()[:63], f"{desired.name}/{desired.code_sha256.replace('/', '_')}.zip"))
    if not state.exists:
        steps += [CreateFunction(), WaitUntilUpdated()]
    else:
        if code_changed:
            steps += [UpdateCode(), WaitUntilUpdated()]
        if changed:
            steps += [UpdateConfiguration(changed), WaitUntilUpdated()]
    existing = None if (code_changed or changed) else state.version_like_latest()
    if not _alias_serves(state, existing, desired):
        if existing is None:
            steps.append(PublishVersion())
            if desired.snapstart:
                steps.append(WaitForSnapshot())
        steps.append(SmokeTest(existing))
        steps.append(_move_alias(state, desired, existing))
    return steps + function_settings_steps(state, desired)


def function_settings_steps(state: FunctionState, desired: DesiredFunction) -> list:
    """The function's own settings that are not what the deploy wants: reserved and provisioned concurrency, the
    function URL. The last steps of a deploy (a deploy stopped before them leaves them to the next one)."""
    steps: list = []
    if desired.reserved is not None and desired.reserved != state.reserved:
        steps.append(SetReservedConcurrency(desired.reserved))
    if desired.provisioned is not None and desired.provisioned != state.provisioned:
        steps.append(SetProvisionedConcurrency(desired.alias, desired.provisioned))
    wanted_auth = URL_AUTH.get(desired.function_url)
    if wanted_auth and wanted_auth != state.url_auth:
        steps.append(ConfigureFunctionUrl(desired.alias, wanted_auth, exists=state.url_auth is not None))
    elif desired.function_url == "none" and state.url_auth is not None:
        steps.append(RemoveFunctionUrl(desired.alias))
    return steps


def check_snapstart(state: FunctionState, desired: DesiredFunction) -> None:
    """What Lambda refuses with SnapStart, refused before anything changes, with the reason."""
    if desired.provisioned or state.provisioned:
        raise MpackError(
            "SnapStart and provisioned concurrency cannot be combined on Lambda",
            "drop --snapstart, or remove the provisioned concurrency (--provisioned 0) first: a SnapStart version starts from its snapshot instead",
        )
    if state.file_systems:
        raise MpackError(f"the function mounts an EFS file system ({', '.join(state.file_systems)}), which SnapStart does not support", "detach the file system, or deploy without --snapstart")
    if state.ephemeral_mb > SNAPSTART_EPHEMERAL_MB:
        raise MpackError(
            f"the function has {state.ephemeral_mb} MB of ephemeral storage; SnapStart allows {SNAPSTART_EPHEMERAL_MB} MB at most",
            "lower its ephemeral storage to 512 MB, or deploy without --snapstart",
        )


def role_name(function: str) -> str:
    """IAM's 64-character limit, without two long function names sharing a role (and its log
    policy): long names keep a prefix and gain a digest of the whole name."""
    name = f"mpack-{function}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(function.encode()).hexdigest()[:10]
    return f"{name[:53]}-{digest}"


def _changed_settings(state: FunctionState, desired: DesiredFunction) -> tuple[str, ...]:
    if not state.exists:
        return ()
    wanted = desired.configuration()
    changed = [key for key, value in wanted.items() if state.configuration.get(key) != value]
    if desired.role_arn and desired.role_arn != state.role_arn:
        changed.append("Role")
    return tuple(changed)


def _alias_serves(state: FunctionState, version: str | None, desired: DesiredFunction) -> bool:
    """Whether the alias already routes to ``version`` exactly as asked (fully, or as this canary)."""
    alias = state.alias
    if version is None or alias is None:
        return False
    if desired.canary_percent is None:
        return alias.version == version and not alias.weights
    return alias.weights.get(version) == round(desired.canary_percent / 100, 4)


def _move_alias(state: FunctionState, desired: DesiredFunction, version: str | None) -> MoveAlias:
    alias = state.alias
    serving = alias.version if alias else None
    if desired.canary_percent is not None and serving is not None:
        return MoveAlias(desired.alias, version, primary=serving, weight=round(desired.canary_percent / 100, 4), revision_id=alias.revision_id, previous=alias.previous)
    return MoveAlias(desired.alias, version, primary=None, weight=None, revision_id=alias.revision_id if alias else None, previous=serving)


def plan_promote(state: FunctionState, alias_name: str) -> list:
    """Move the alias fully to its canary version."""
    from mpack.infra.errors import MpackError

    alias = state.alias
    if alias is None or not alias.weights:
        raise MpackError(f"alias {alias_name} has no canary to promote", "deploy with --canary PCT first")
    canary = max(alias.weights, key=alias.weights.get)
    return [MoveAlias(alias_name, canary, primary=None, weight=None, revision_id=alias.revision_id, previous=alias.version)]


def plan_rollback(state: FunctionState, alias_name: str) -> list:
    """Put the alias back: drop a canary, else return to the version served before the last move."""
    from mpack.infra.errors import MpackError

    alias = state.alias
    if alias is None:
        raise MpackError(f"the function has no alias {alias_name}", "check --function and --alias")
    if alias.weights:
        return [MoveAlias(alias_name, alias.version, primary=None, weight=None, revision_id=alias.revision_id, previous=alias.previous)]
    if alias.previous is None:
        raise MpackError(f"alias {alias_name} records no previous version to roll back to", "point it by hand: aws lambda update-alias --function-version N")
    return [MoveAlias(alias_name, alias.previous, primary=None, weight=None, revision_id=alias.revision_id, previous=alias.version)]
