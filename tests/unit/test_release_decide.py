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


def tags(**by_version):
    """version -> status: the registry's records."""
    return lambda version: dict(status_tags("prod", by_version[version], WHERE, 100.0 if by_version[version] == "serving" else None, since="t")) if version in by_version else {}


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
    assert baking.outcome == "baking" and baking.steps == () and baking.bake_left_s == 240
    promoted = decide(release(canary=10, bake="1m"), "3", canary, _canary_tags(), passed(), NOW)
    assert promoted.outcome == "promoted" and kinds(promoted) == ["Promote", "RecordStatus", "RecordStatus"]
    failed = decide(release(canary=10, bake="1m"), "3", canary, _canary_tags(), lambda: SimpleNamespace(passed=False, summary="error rate 30% is over 1%"), NOW)
    assert failed.outcome == "rolled back" and failed.failed and kinds(failed) == ["DropCanary", "RecordStatus"]
    assert dict(failed.steps[1].tags)["mpack.prod.status"] == "failed" and "error rate" in dict(failed.steps[1].tags)["mpack.prod.reason"]


def _canary_tags():
    def of(version):
        if version == "2":
            return dict(status_tags("prod", "serving", WHERE, 100.0, since="t"))
        return dict(status_tags("prod", "canary", WHERE, 10.0, since="t")) if version == "3" else {}

    return of


def test_the_alias_moving_during_a_canary_drops_it_first():
    canary = Serving(exists=True, primary="2", primary_id="5", canary="3", canary_id="6", canary_share=10.0, canary_since=NOW, where=WHERE)
    back = decide(release(canary=10), "2", canary, _canary_tags(), never_judged, NOW)
    assert back.outcome == "canary dropped" and kinds(back) == ["DropCanary", "RecordStatus"]
    onward = decide(release(canary=10), "4", canary, _canary_tags(), never_judged, NOW)
    assert onward.outcome == "canary" and kinds(onward)[:2] == ["DropCanary", "RecordStatus"] and "BuildVersion" in kinds(onward)


def test_a_failed_version_is_not_retried_unless_asked():
    serving = Serving(exists=True, primary="2", primary_id="5", where=WHERE)
    skipped = decide(release(), "3", serving, tags(**{"2": "serving", "3": "failed"}), never_judged, NOW)
    assert skipped.outcome == "skipped" and skipped.steps == () and "not retried" in skipped.warnings[0]
    retried = decide(release(), "3", serving, tags(**{"2": "serving", "3": "failed"}), never_judged, NOW, retry=True)
    assert "BuildVersion" in kinds(retried)


@pytest.mark.parametrize(("record", "expected"), [("retired", ["ServeAgain", "RecordStatus", "RecordStatus"]), (None, ["BuildVersion", "DeployVersion", "RecordStatus", "RecordStatus"])])
def test_a_published_version_serves_again_only_if_it_served_before(record, expected):
    """A version published by a sync killed before its smoke test never served: it is deployed (and tested) again."""
    serving = Serving(exists=True, primary="2", primary_id="5", published={"1": "Lambda version 3", "2": "Lambda version 5"}, where=WHERE)
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
