"""The deploy planner is a pure function of (AWS state, desired function): every decision it makes
about what to change, and what never to touch, checked without AWS."""

from __future__ import annotations

from pathlib import Path

import pytest
from mpack.infra.aws.function_state import AliasState, DesiredFunction, FunctionState
from mpack.infra.aws.planner import plan_deploy, plan_promote, plan_rollback
from mpack.infra.errors import MpackError

CONFIG = {"Handler": "mpack_handler.handler", "Runtime": "python3.11", "MemorySize": 1024, "Timeout": 30, "Environment": {"Variables": {}}}


def desired(**changes) -> DesiredFunction:
    base = dict(
        name="fraud",
        zip_path=Path("b.zip"),
        code_sha256="NEW",
        handler="mpack_handler.handler",
        runtime="python3.11",
        arch="x86_64",
        memory_mb=1024,
        timeout_s=30,
        environment={},
        alias="live",
        canary_percent=None,
        role_arn=None,
        reserved=None,
        function_url="none",
        bucket=None,
        input_example={},
        model="fraud 2",
    )
    return DesiredFunction(**{**base, **changes})


def serving(code: str = "OLD", version: str = "1", weights: dict | None = None, **changes) -> FunctionState:
    versions = {"$LATEST": code, version: code} if version == "1" else {"$LATEST": code, "1": "OLD", version: code}
    published = {v: dict(CONFIG, Role="role") for v in versions if v != "$LATEST"}
    base = dict(exists=True, arn="arn", code_sha256=code, configuration=dict(CONFIG), role_arn="role", versions=versions, version_settings=published, alias=AliasState("1", weights or {}, "rev", None))
    return FunctionState(**{**base, **changes})


def kinds(steps) -> list[str]:
    return [type(step).__name__ for step in steps]


def test_first_deploy_creates_role_function_version_and_alias():
    assert kinds(plan_deploy(FunctionState(exists=False), desired(), 1000)) == ["CreateRole", "CreateFunction", "WaitUntilUpdated", "PublishVersion", "SmokeTest", "MoveAlias"]
    assert "CreateRole" not in kinds(plan_deploy(FunctionState(exists=False), desired(role_arn="arn:role"), 1000))


def test_unchanged_deploy_plans_nothing():
    assert plan_deploy(serving(code="NEW"), desired(), 1000) == []


def test_new_code_updates_publishes_tests_then_moves_the_alias_last():
    steps = plan_deploy(serving(), desired(), 1000)
    assert kinds(steps) == ["UpdateCode", "WaitUntilUpdated", "PublishVersion", "SmokeTest", "MoveAlias"]
    assert steps[-1].previous == "1" and steps[-1].revision_id == "rev"


def test_big_zips_go_through_s3_and_configuration_changes_are_named():
    steps = plan_deploy(serving(), desired(memory_mb=2048), 60 * 1024 * 1024)
    assert kinds(steps)[:1] == ["UploadToS3"] and steps[0].bucket == "mpack-artifacts-fraud"
    update = [s for s in steps if type(s).__name__ == "UpdateConfiguration"][0]
    assert update.changed == ("MemorySize",)


def test_canary_keeps_the_serving_version_primary_and_is_idempotent():
    steps = plan_deploy(serving(), desired(canary_percent=10), 1000)
    move = steps[-1]
    assert (move.primary, move.weight, move.version) == ("1", 0.1, None)
    assert plan_deploy(serving(code="NEW", version="2", weights={"2": 0.1}), desired(canary_percent=10), 1000) == []


def test_a_version_that_failed_its_smoke_test_is_tested_again_before_the_alias_moves():
    state = serving(code="NEW", version="2")  # version 2 exists with this code, the alias is still on 1
    state = FunctionState(**{**state.__dict__, "alias": AliasState("1", {}, "rev", None)})
    assert kinds(plan_deploy(state, desired(), 1000)) == ["SmokeTest", "MoveAlias"]


def test_an_interrupted_deploy_publishes_instead_of_reusing_a_version_with_old_settings():
    """Killed between UpdateFunctionConfiguration and PublishVersion: $LATEST has X=v3 and the
    code of version 1, which was published with X=v2. Re-running must publish, not point at 1."""
    latest = dict(CONFIG, Environment={"Variables": {"X": "v3"}})
    state = serving(code="NEW", version="2", configuration=latest)
    state = FunctionState(
        **{**state.__dict__, "version_settings": {"1": dict(CONFIG, Role="role"), "2": dict(CONFIG, Environment={"Variables": {"X": "v2"}}, Role="role")}, "alias": AliasState("2", {}, "rev", "1")}
    )
    steps = plan_deploy(state, desired(environment={"X": "v3"}), 1000)
    assert kinds(steps) == ["PublishVersion", "SmokeTest", "MoveAlias"]
    assert steps[-1].version is None  # the version published now, not an old one


def test_function_url_none_removes_the_url_mpack_made():
    assert kinds(plan_deploy(serving(code="NEW", url_auth="NONE"), desired(function_url="none"), 1000)) == ["RemoveFunctionUrl"]
    assert plan_deploy(serving(code="NEW"), desired(function_url="none"), 1000) == []


def test_long_function_names_get_distinct_roles_within_iams_limit():
    from mpack.infra.aws.planner import role_name

    first, second = role_name("a" * 70 + "-scoring"), role_name("a" * 70 + "-training")
    assert first != second and len(first) <= 64 and len(second) <= 64
    assert role_name("fraud") == "mpack-fraud"


def test_promote_and_rollback():
    canary = serving(code="NEW", version="2", weights={"2": 0.1})
    promote = plan_promote(canary, "live")[0]
    assert (promote.version, promote.weight, promote.previous) == ("2", None, "1")
    drop = plan_rollback(canary, "live")[0]
    assert (drop.version, drop.weight) == ("1", None)
    moved = FunctionState(**{**canary.__dict__, "alias": AliasState("2", {}, "rev", "1")})
    assert plan_rollback(moved, "live")[0].version == "1"
    with pytest.raises(MpackError, match="no canary to promote"):
        plan_promote(serving(), "live")
    with pytest.raises(MpackError, match="records no previous version"):
        plan_rollback(serving(), "live")


def test_the_executor_translates_aws_errors_once_naming_the_step():
    """A botocore ClientError from any step becomes one MpackError naming that step (the real
    calls against moto's server are in tests/integration/test_deploy.py)."""
    from botocore.exceptions import ClientError
    from mpack.infra.aws.deployer import run
    from mpack.infra.aws.steps import DeployContext, PublishVersion
    from mpack.infra.plan import Plan

    class Refusing:
        def publish_version(self, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PublishVersion")

    class Aws:
        lambda_ = Refusing()

    context = DeployContext(Aws(), desired(), serving(), smoke=lambda version: "")
    with pytest.raises(MpackError) as raised:
        run(Plan("deploy", (PublishVersion(),)), context)
    assert raised.value.message.startswith("step 1 of 1 failed (publish a version): ")
    assert "publish a version (function fraud)" in raised.value.message and "AccessDeniedException" in raised.value.message
    assert "permission for PublishVersion" in raised.value.hint


def test_snapstart_publishes_then_waits_for_the_snapshot_before_the_smoke_test():
    steps = plan_deploy(serving(), desired(runtime="python3.12", snapstart=True), 1000)
    assert kinds(steps) == ["UpdateCode", "WaitUntilUpdated", "UpdateConfiguration", "WaitUntilUpdated", "PublishVersion", "WaitForSnapshot", "SmokeTest", "MoveAlias"]
    assert desired(snapstart=True).configuration()["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert desired(snapstart=False).configuration()["SnapStart"] == {"ApplyOn": "None"}
    assert "SnapStart" not in desired().configuration()  # not asked: left as it is


def test_snapstart_already_on_is_not_an_update():
    config = dict(CONFIG, Runtime="python3.12", SnapStart={"ApplyOn": "PublishedVersions"})
    state = serving(code="NEW", configuration=config, version_settings={"1": dict(config, Role="role")})
    assert plan_deploy(state, desired(runtime="python3.12", snapstart=True), 1000) == []


@pytest.mark.parametrize(
    ("state_changes", "desired_changes", "reason"),
    [
        ({"provisioned": 5}, {}, "provisioned concurrency"),
        ({}, {"provisioned": 2}, "provisioned concurrency"),
        ({"file_systems": ("arn:aws:elasticfilesystem:us-east-1:1:access-point/fsap-1",)}, {}, "EFS file system"),
        ({"ephemeral_mb": 2048}, {}, "2048 MB of ephemeral storage"),
    ],
)
def test_snapstart_refuses_what_lambda_refuses_before_any_change(state_changes, desired_changes, reason):
    with pytest.raises(MpackError, match=reason):
        plan_deploy(serving(**state_changes), desired(runtime="python3.12", snapstart=True, **desired_changes), 1000)
