"""SnapStart: the local platform runs Lambda's phases under the real runtime interface client
(awslambdaric and AWS's snapshot_restore_py) — init, before-snapshot hooks in reverse order, the
restore, after-restore hooks in order — and reports them in Lambda's log lines; bundles register
their own hooks; `mpack deploy --snapstart` against moto's server, with Lambda's refusals.

moto 5 accepts the SnapStart parameter but does not store it, so what `mpack deploy` sent is read
from a pass-through proxy that records the requests (tests/helpers/recording_proxy.py); no check
reads SnapStart back from moto.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.recording_proxy import RecordingProxy
from tests.integration.test_deploy import aws_env, clients, moto_endpoint  # noqa: F401 - the same moto server fixtures

pytestmark = pytest.mark.slow
FUNCTIONS = Path(__file__).resolve().parent.parent / "fixtures" / "functions"
REPORT = re.compile(
    r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB\tMax Memory Used: \d+ MB\tRestore Duration: (?P<restore>[\d.]+) ms\tBilled Restore Duration: (?P<billed>\d+) ms$",
    re.M,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mpack-cache")


def invoke(*args: str, cache: Path):
    return mpack("invoke", *args, "--snapstart", "--cache-dir", str(cache), timeout=120)


def test_hooks_run_in_lambdas_order_around_the_restore(cache):
    result = invoke(str(FUNCTIONS), "--handler", "snapstart_hooks.handler", "--data", "{}", cache=cache)
    assert result.returncode == 0, result.stderr
    log = result.stderr
    order = [
        log.index(marker)
        for marker in ("hook before-2", "hook before-1", "mpack: SnapStart snapshot", "RESTORE_START", "hook after-1", "hook after-2", "RESTORE_REPORT", "START RequestId", "END RequestId")
    ]
    assert order == sorted(order), log  # before-snapshot hooks in reverse registration order, after-restore in order
    report = REPORT.search(log)
    assert report, log
    assert "Init Duration" not in log.split("START RequestId")[1]  # a restored start reports its restore
    assert float(report["restore"]) > 0 and int(report["billed"]) >= float(report["restore"])
    assert "CRIU" in log  # whether a real checkpoint was possible here is said, not hidden


def test_a_failing_after_restore_hook_fails_the_restore_and_is_reported(cache):
    result = invoke(str(FUNCTIONS), "--handler", "snapstart_broken_restore.handler", "--data", "{}", cache=cache)
    assert_clean_error(result, "the function failed", "AfterRestore")
    assert re.search(r"RESTORE_REPORT Restore Duration: [\d.]+ ms\tStatus: error\tError Type: \S*AfterRestore", result.stderr), result.stderr
    assert "the database moved while the snapshot slept" in result.stderr + result.stdout


@pytest.mark.parametrize("runtime", ["micro", "onnx"])
def test_a_bundle_warms_up_before_the_snapshot_and_reseeds_after_restore(store, built, cache, runtime):
    bundle = built("models:/fraud@champion", runtime=runtime).artifact
    frame = store.frames["fraud"].iloc[:3]
    data = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}})
    result = invoke(str(bundle), "--data", data, "--json", cache=cache)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predictions"] == store.estimators["fraud"].predict(frame).tolist()
    log = result.stderr
    warmed, restored = log.index("warmed up on the input example before the snapshot"), log.index("random number generators re-seeded")
    assert warmed < log.index("RESTORE_START") < restored < log.index("RESTORE_REPORT")
    assert REPORT.search(log), log


def test_without_snapstart_no_hook_is_registered(store, built, cache):
    bundle = built("models:/fraud@champion", runtime="micro").artifact
    result = mpack("invoke", str(bundle), "--cache-dir", str(cache), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "SnapStart" not in result.stderr and "RESTORE" not in result.stderr and "Init Duration" in result.stderr


# -- deploy -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_312(built) -> Path:
    """A micro bundle for Lambda's Python 3.12: no Debian release ships 3.12, so it is built with
    --no-verify (uncompiled and unverified, with a warning); these tests deploy it, they do not run it."""
    return built("models:/fraud@champion", runtime="micro", python="3.12", verify=False).artifact


@pytest.fixture(scope="module")
def proxy(moto_endpoint):  # noqa: F811
    recording = RecordingProxy(moto_endpoint)
    yield recording
    recording.close()


def deploy(env: dict, *args: str):
    result = mpack("deploy", *args, "--json", env=env, timeout=300)
    return result, (json.loads(result.stdout) if result.returncode == 0 else None)


def test_deploy_turns_snapstart_on_for_published_versions(bundle_312, aws_env, proxy, clients):  # noqa: F811
    env = {**aws_env, "AWS_ENDPOINT_URL": proxy.url}
    planned, plan = deploy(env, str(bundle_312), "--function", "snappy", "--snapstart", "--plan")
    assert planned.returncode == 0, planned.stderr
    assert "wait for the new version's SnapStart snapshot (State Active)" in plan["plan"] and not plan["applied"]
    result, report = deploy(env, str(bundle_312), "--function", "snappy", "--snapstart", "--smoke-test", "none", "--yes")
    assert result.returncode == 0, result.stderr
    created = [json.loads(b) for b in proxy.bodies("/functions") if b and b"FunctionName" in b and b"snappy" in b]
    assert created and created[0]["SnapStart"] == {"ApplyOn": "PublishedVersions"} and created[0]["Runtime"] == "python3.12"
    assert any(check.startswith("SnapStart snapshot of version 1") for check in report["checks"])
    assert report["alias_version"] == "1"
    assert clients["lambda"].get_function(FunctionName="snappy")["Configuration"]["Runtime"] == "python3.12"


def test_snapstart_is_refused_where_lambda_refuses_it(built, bundle_312, aws_env):  # noqa: F811
    bundle_311 = built("models:/fraud@champion", runtime="micro").artifact
    too_old, _ = deploy(aws_env, str(bundle_311), "--function", "snappy-old", "--snapstart", "--yes")
    assert_clean_error(too_old, "SnapStart for Python needs the 3.12 runtime or newer", "Python 3.11", "--python 3.12")
    provisioned, _ = deploy(aws_env, str(bundle_312), "--function", "snappy-pc", "--snapstart", "--provisioned", "2", "--yes")
    assert_clean_error(provisioned, "SnapStart and provisioned concurrency cannot be combined")


def test_export_carries_snapstart(bundle_312, tmp_path):
    result = mpack("export", str(bundle_312), "--function", "snappy", "--format", "sam", "--snapstart", "--output", str(tmp_path / "sam.yaml"))
    assert result.returncode == 0, result.stderr
    template = yaml.safe_load((tmp_path / "sam.yaml").read_text())
    assert template["Resources"]["Function"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    result = mpack("export", str(bundle_312), "--function", "snappy", "--format", "cloudformation", "--snapstart", "--output", str(tmp_path / "cfn.yaml"))
    assert yaml.safe_load((tmp_path / "cfn.yaml").read_text())["Resources"]["Function"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
