"""The one executor contract (mpack.infra.plan) that AWS and Azure deploys share: steps run in order,
each outcome is recorded apart from the plan, the first failure stops the run naming the step and what
was done, and a plan of idempotent steps converges when run again. The steps here are real ones over
a small in-memory platform (no mocks); the last tests check that both deployers put the smoke test in
the same place: after the new version is staged, before traffic moves to it."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from mpack.infra.errors import MpackError
from mpack.infra.plan import Plan, Record, StepFailed, execute


@dataclass
class Platform:
    """What the steps change: named packages, the one serving, and the order things were done in."""

    packages: dict = field(default_factory=dict)
    serving: str | None = None
    calls: list = field(default_factory=list)


@dataclass(frozen=True)
class Upload:
    name: str
    data: str

    def describe(self) -> str:
        return f"upload {self.name}"

    def apply(self, platform: Platform) -> None:
        platform.packages[self.name] = self.data  # the same upload twice leaves the same package
        platform.calls.append(f"upload {self.name}")


@dataclass(frozen=True)
class Smoke:
    name: str

    def describe(self) -> str:
        return f"smoke-test {self.name}"

    def apply(self, platform: Platform) -> str:
        platform.calls.append(f"smoke {self.name}")
        if "broken" in platform.packages.get(self.name, "broken"):
            raise MpackError(f"the smoke test failed: {self.name} does not answer", "fix the bundle and deploy again")
        return f"smoke test of {self.name}: it answers"


@dataclass(frozen=True)
class Serve:
    name: str
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        return f"serve {self.name}"

    def apply(self, platform: Platform) -> None:
        platform.serving = self.name
        platform.calls.append(f"serve {self.name}")


@dataclass(frozen=True)
class Refused:
    """A platform SDK's own exception (not an MpackError), for the guard to translate."""

    def describe(self) -> str:
        return "set the concurrency"

    def apply(self, platform: Platform) -> None:
        raise PermissionError("denied by the platform")


@dataclass(frozen=True)
class ServedPlan(Plan):
    served: str = "v1"

    def serving(self) -> str:
        return f"package {self.served}"


def deploy(data: str = "model v2", extra: tuple = ()) -> ServedPlan:
    return ServedPlan("deploy", (Upload("v2", data), Smoke("v2"), Serve("v2"), *extra))


def test_steps_run_in_order_and_each_outcome_is_recorded():
    platform, heard = Platform(), []
    record = execute(deploy(), platform, progress=heard.append)
    assert platform.calls == ["upload v2", "smoke v2", "serve v2"] and platform.serving == "v2"
    assert [(o.number, o.description, o.note) for o in record.outcomes] == [(1, "upload v2", None), (2, "smoke-test v2", "smoke test of v2: it answers"), (3, "serve v2", None)]
    assert record.notes == ["smoke test of v2: it answers"] and record.lines == ["upload v2", "smoke test of v2: it answers", "serve v2"]
    assert list(heard) == list(record.outcomes)  # progress hears each step as it is done


def test_the_first_failure_stops_the_run_naming_the_step_and_what_was_done():
    platform = Platform(serving="v1")
    with pytest.raises(StepFailed) as raised:
        execute(deploy(data="broken model"), platform)
    error = raised.value
    assert platform.calls == ["upload v2", "smoke v2"] and platform.serving == "v1"  # traffic never moved
    assert error.message == "step 2 of 3 failed (smoke-test v2): the smoke test failed: v2 does not answer"
    assert error.hint == "fix the bundle and deploy again; done before it: 1. upload v2; traffic did not move: package v1 still serves"
    assert [o.description for o in error.record.outcomes] == ["upload v2"] and error.failed.number == 2


def test_a_failure_after_traffic_moved_says_so():
    with pytest.raises(StepFailed) as raised:
        execute(deploy(extra=(Refused(),)), Platform(), guard=_translated)
    assert raised.value.message == "step 4 of 4 failed (set the concurrency): the platform refused to set the concurrency: denied by the platform"
    assert raised.value.hint.endswith("traffic had already moved: run the same command again to finish")
    assert raised.value.hint.startswith("grant the permission; done before it: 1. upload v2, 2. smoke-test v2, 3. serve v2")


def test_without_a_guard_a_platform_exception_is_not_disguised():
    with pytest.raises(PermissionError):
        execute(Plan("deploy", (Refused(),)), Platform())


def test_running_a_plan_never_changes_it():
    steps = [Upload("v2", "model v2"), Smoke("v2"), Serve("v2")]
    plan = Plan("deploy", steps)
    before = copy.deepcopy(plan)
    steps.append(Serve("v3"))  # the list it was made from cannot reach the plan
    record = execute(plan, Platform())
    assert plan == before and isinstance(plan.steps, tuple) and record.plan is plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps = ()  # type: ignore[misc]
    assert isinstance(record, Record) and len(record.outcomes) == 3


def test_running_an_idempotent_plan_again_converges():
    """An interrupted run, then the same plan again: the platform ends as one clean run leaves it."""
    clean = Platform()
    execute(deploy(), clean)
    interrupted = Platform()
    with pytest.raises(StepFailed):
        execute(deploy(extra=(Refused(),)), interrupted, guard=_translated)
    execute(deploy(), interrupted)
    execute(deploy(), interrupted)
    assert (interrupted.packages, interrupted.serving) == (clean.packages, clean.serving)


def test_descriptions_never_show_credentials():
    plan = Plan("deploy", (Upload("https://account.blob.core.windows.net/c/p.zip?sig=SECRET", "x"),))
    assert plan.descriptions() == ["upload https://account.blob.core.windows.net/c/p.zip?sig=***"]


class _translated:
    """A guard as a platform writes one: its SDK's exceptions become MpackError naming the step."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, PermissionError):
            raise MpackError(f"the platform refused to {self.what}: {error}", "grant the permission") from None
        return False


# -- both deployers: plans of the one type, the smoke test between staging and traffic ----------------


def kinds(plan) -> list[str]:
    return [type(step).__name__ for step in plan.steps]


def test_aws_smoke_tests_the_published_version_before_the_alias_moves():
    from mpack.infra.aws.deployer import FunctionPlan
    from mpack.infra.aws.function_state import FunctionState
    from mpack.infra.aws.planner import plan_deploy

    from tests.unit.test_deploy_planner import desired

    plan = FunctionPlan("deploy", plan_deploy(FunctionState(exists=False), desired(), 1000), desired(), FunctionState(exists=False), "live")
    assert isinstance(plan, Plan) and kinds(plan)[-3:] == ["PublishVersion", "SmokeTest", "MoveAlias"]
    assert [getattr(step, "moves_traffic", False) for step in plan.steps].index(True) == len(plan.steps) - 1


@pytest.fixture
def package(tmp_path):
    from mpack.infra.azure.deployer import AzurePackage

    path = tmp_path / "fraud.zip"
    path.write_bytes(b"zip")
    return AzurePackage(path, "ab" * 32, "fraud:2", {})


@pytest.fixture
def session():
    from mpack.infra.azure.session import AzureSession, AzureTarget

    return AzureSession(AzureTarget("sub", "rg", "fraud", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"))


def test_azure_flex_keeps_then_smoke_tests_then_releases(package):
    from mpack.infra.azure.app_state import AppState
    from mpack.infra.azure.deployer import AppPlan, _flex_steps

    state = AppState("fraud", "flex", "fraud.azurewebsites.net", True, container_url="https://acct.blob.core.windows.net/app-package-fraud", serving_sha="cd" * 32)
    plan = AppPlan("deploy", _flex_steps(state, package), state, package)
    assert isinstance(plan, Plan) and kinds(plan) == ["ArchivePackage", "SmokeTest", "ReleasePackage", "OneDeploy", "SyncTriggers"]
    assert plan.serving() == f"package {'cd' * 6}"


def test_azure_run_from_package_uploads_then_smoke_tests_then_points_the_app(package, session):
    from mpack.infra.azure.app_state import AppState
    from mpack.infra.azure.deployer import _package_url_steps

    state = AppState("fraud", "package-url", "fraud.azurewebsites.net", True)
    steps = _package_url_steps(session, state, package, "https://acct.blob.core.windows.net/packages")
    assert [type(s).__name__ for s in steps] == ["UploadPackage", "SmokeTest", "PointAppAtPackage", "SyncTriggers"]
    assert "AccountKey" not in repr(steps[0])  # the connection string signs the SAS; it is never shown


def test_azure_canary_stages_on_the_slot_then_smoke_tests_then_routes(package, session):
    from mpack.infra.azure.app_state import AppState
    from mpack.infra.azure.deployer import _plan_canary

    state = AppState("fraud", "package-url", "fraud.azurewebsites.net", True, serving_sha="cd" * 32)
    plan = _plan_canary(session, state, package, 10, "https://acct.blob.core.windows.net/packages")
    assert kinds(plan) == ["CreateSlot", "UploadPackage", "PointAppAtPackage", "SyncTriggers", "SmokeTest", "RouteTraffic"]
    assert [getattr(step, "moves_traffic", False) for step in plan.steps] == [False] * 5 + [True]  # the slot's restart moves no traffic


def test_azure_smoke_failure_is_named_with_what_still_serves(package, session):
    """The executor runs Azure's steps: a failing smoke test stops before the release."""
    from mpack.infra.azure.app_state import AppState
    from mpack.infra.azure.deployer import AppPlan, apply
    from mpack.infra.azure.steps import ReleasePackage, SmokeTest

    def refuses(checked) -> str:
        raise MpackError(f"smoke test: package {checked.sha[:12]} fails to start", "traffic was not moved to it; fix the bundle and deploy again")

    state = AppState("fraud", "flex", "fraud.azurewebsites.net", True, container_url="https://acct.blob.core.windows.net/c", serving_sha="cd" * 32)
    plan = AppPlan("deploy", (SmokeTest(package.sha), ReleasePackage(state.container_url, package.sha, state.serving_sha, package.model)), state, package)
    with pytest.raises(StepFailed) as raised:
        apply(session, plan, smoke=refuses)
    assert raised.value.message.startswith(f"step 1 of 2 failed (smoke-test package {package.sha[:12]}")
    assert raised.value.hint == f"traffic was not moved to it; fix the bundle and deploy again; no step was applied before it; traffic did not move: package {'cd' * 6} still serves"
