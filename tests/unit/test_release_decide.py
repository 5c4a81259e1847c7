"""The sync's decisions, for every state of registry and platform: pure, so each is checked here without AWS;
tests/integration/test_sync.py runs the same paths for real."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mpack.packager.release.config import parse_release
from mpack.packager.release.decide import decide
from mpack.packager.release.serving import Serving
from mpack.packager.release.tags import status_tags

WHERE = "aws lambda fraud:live (us-east-1)"
NOW = 1_800_000_000


def release(**extra):
    return parse_release({"name": "prod", "model": "models:/fraud@champion", "function": "fraud", **extra}, "test")


SERVED_BY = {"1": "3", "2": "5", "3": "6"}  # model version -> the Lambda version that served it


def tags(**by_version):
    """version -> status: the registry's records."""

    def of(version):
        if version not in by_version:
            return {}
        state = by_version[version]
        served_by = SERVED_BY[version] if state in ("serving", "retired") else None
        return dict(status_tags("prod", state, WHERE, 100.0 if state == "serving" else None, since="t", served_by=served_by))

    return of


def passed(summary="within the gates"):
    return lambda: SimpleNamespace(passed=True, summary=summary)


def never_judged():
    raise AssertionError("the canary was judged before its bake ended")


def kinds(plan) -> list[str]:
    return [type(step).__name__ for step in plan.steps]


def test_first_deploy_builds_deploys_and_records():
    plan = decide(release(canary=10), "1", Serving(exists=False, where=WHERE), tags(), never_judged, NOW)
    assert plan.outcome == "deployed" and kinds(plan) == ["BuildVersion", "DeployVersion", "RecordStatus"]
    assert plan.steps[1].canary is None  # nothing serves yet: no canary


def test_serving_what_the_alias_names_is_nothing_to_do_unless_the_registry_lacks_the_record():
    serving = Serving(exists=True, primary="2", primary_id="5", where=WHERE)
    assert decide(release(), "2", serving, tags(**{"2": "serving"}), never_judged, NOW).steps == ()
    plan = decide(release(), "2", serving, tags(), never_judged, NOW)
    assert plan.outcome == "recorded" and kinds(plan) == ["RecordStatus"]


def test_a_new_version_goes_out_as_a_canary_beside_the_serving_one():
    plan = decide(release(canary=10), "3", Serving(exists=True, primary="2", primary_id="5", where=WHERE), tags(**{"2": "serving"}), never_judged, NOW)
    assert plan.outcome == "canary" and kinds(plan) == ["BuildVersion", "DeployVersion", "RecordStatus"] and plan.steps[1].canary == 10


def test_a_baking_canary_waits_and_then_is_promoted_or_rolled_back():
    canary = Serving(exists=True, primary="2", primary_id="5", canary="3", canary_id="6", canary_share=10.0, canary_since=NOW - 60, where=WHERE)
    baking = decide(release(canary=10, bake="5m"), "3", canary, _canary_tags(), never_judged, NOW)
    assert baking.outcome == "baking" and baking.steps == () and baking.bake_left_s == 300  # 240 s of bake + 60 s for the figures
    promoted = decide(release(canary=10, bake="30s"), "3", canary, _canary_tags(), passed(), NOW)
    assert promoted.outcome == "promoted" and kinds(promoted) == ["Promote", "RecordStatus", "RecordStatus"]
    assert promoted.steps[0].platform_id == "6" and dict(promoted.steps[1].tags)["mpack.prod.served_by"] == "6"
    failed = decide(release(canary=10, bake="30s"), "3", canary, _canary_tags(), lambda: SimpleNamespace(passed=False, summary="error rate 30% is over 1%"), NOW)
    assert failed.outcome == "rolled back" and failed.failed and kinds(failed) == ["RecordStatus", "DropCanary"]  # recorded first
    assert dict(failed.steps[0].tags)["mpack.prod.status"] == "failed" and "error rate" in dict(failed.steps[0].tags)["mpack.prod.reason"]
    again = decide(release(canary=10, bake="30s"), "3", canary, _canary_tags("failed"), never_judged, NOW)  # killed before the drop
    assert again.outcome == "rolled back" and kinds(again) == ["DropCanary"]


def _canary_tags(canary_status="canary"):
    def of(version):
        if version == "2":
            return dict(status_tags("prod", "serving", WHERE, 100.0, since="t", served_by="5"))
        return dict(status_tags("prod", canary_status, WHERE, 10.0, since="t")) if version == "3" else {}

    return of


def test_the_alias_moving_during_a_canary_drops_it_first():
    canary = Serving(exists=True, primary="2", primary_id="5", canary="3", canary_id="6", canary_share=10.0, canary_since=NOW, where=WHERE)
    back = decide(release(canary=10), "2", canary, _canary_tags(), never_judged, NOW)
    assert back.outcome == "canary dropped" and kinds(back) == ["DropCanary", "RecordStatus"]
    assert dict(back.steps[1].tags)["mpack.prod.status"] == "dropped"
    onward = decide(release(canary=10), "4", canary, _canary_tags(), never_judged, NOW)
    assert onward.outcome == "canary" and kinds(onward)[:2] == ["DropCanary", "RecordStatus"] and "BuildVersion" in kinds(onward)


def test_a_failed_version_is_not_retried_unless_asked():
    serving = Serving(exists=True, primary="2", primary_id="5", where=WHERE)
    skipped = decide(release(), "3", serving, tags(**{"2": "serving", "3": "failed"}), never_judged, NOW)
    assert skipped.outcome == "skipped" and skipped.steps == () and "not retried" in skipped.warnings[0]
    retried = decide(release(), "3", serving, tags(**{"2": "serving", "3": "failed"}), never_judged, NOW, retry=True)
    assert "BuildVersion" in kinds(retried)


@pytest.mark.parametrize(
    ("record", "published", "expected"),
    [
        ("retired", ("3",), ["ServeAgain", "RecordStatus", "RecordStatus"]),
        (None, ("3",), ["BuildVersion", "DeployVersion", "RecordStatus", "RecordStatus"]),  # published, never served (killed before its smoke test)
        ("retired", ("4",), ["BuildVersion", "DeployVersion", "RecordStatus", "RecordStatus"]),  # another Lambda version than the one that served
        ("dropped", ("3",), ["BuildVersion", "DeployVersion", "RecordStatus", "RecordStatus"]),  # a dropped canary never passed its bake
    ],
)
def test_a_published_version_serves_again_only_if_that_very_version_served_before(record, published, expected):
    serving = Serving(exists=True, primary="2", primary_id="5", published={"1": published, "2": ("5",)}, where=WHERE)
    records = {"2": "serving"} | ({"1": record} if record else {})
    plan = decide(release(), "1", serving, tags(**records), never_judged, NOW)
    assert kinds(plan) == expected


def test_changed_settings_redeploy_the_same_version():
    serving = Serving(exists=True, primary="2", primary_id="5", primary_settings_differ=True, where=WHERE)
    plan = decide(release(canary=10), "2", serving, tags(**{"2": "serving"}), never_judged, NOW)
    assert kinds(plan)[:2] == ["BuildVersion", "DeployVersion"] and plan.steps[1].canary is None


def test_a_deleted_alias_removes_nothing():
    plan = decide(release(), None, Serving(exists=True, primary="2", primary_id="5", where=WHERE), tags(), never_judged, NOW)
    assert plan.outcome == "alias missing" and plan.steps == () and "nothing is removed" in plan.warnings[0]


def test_a_canary_mpack_did_not_publish_is_dropped():
    foreign = Serving(exists=True, primary="2", primary_id="5", canary=None, canary_id="9", canary_share=20.0, where=WHERE)
    plan = decide(release(), "2", foreign, tags(**{"2": "serving"}), never_judged, NOW)
    assert plan.outcome == "canary dropped" and kinds(plan) == ["DropCanary"] and plan.steps[0].platform_id == "9"
