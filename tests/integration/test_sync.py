"""`mpack sync` end to end: a real `mlflow server` (sqlite, proxied artifacts) holds a registered model whose
alias moves; moto's server on 127.0.0.1 is AWS (Lambda versions, aliases, weighted routing, CloudWatch); every
bundle is built for real in the model's own environment and smoke-tested on mpack's local Lambda platform.

What is not real: moto's Lambda does not run code, so it emits no CloudWatch figures — the tests put the
figures Lambda would publish for a canary (namespace AWS/Lambda, FunctionName/Resource/ExecutedVersion) with
CloudWatch's own API, and moto has no percentile statistic, so the gate reads the maximum (said in its verdict)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.cli import mpack, sync_report
from tests.helpers.mlflow_server import mlflow_server, register_versions
from tests.helpers.moto import CREDENTIALS, aws_clients, moto_server

pytestmark = pytest.mark.slow
MODEL = "sync-fraud"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri, register_versions(uri, MODEL)


@pytest.fixture(scope="module")
def aws(tmp_path_factory, registry, runtime_cache):
    with moto_server() as endpoint:
        env = {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS, "MLFLOW_TRACKING_URI": registry[0], "MPACK_CACHE_DIR": str(runtime_cache)}
        yield env, aws_clients(endpoint, "lambda", "cloudwatch")


def releases(folder: Path, name: str, function: str, **extra) -> Path:
    settings = {"name": name, "model": f"models:/{MODEL}@champion", "function": function, "smoke-test": "local", **extra}
    lines = ["[[release]]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sync(env, config: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = mpack("sync", "--config", str(config), "--json", *args, env=env, timeout=600)
    return result, sync_report(result)


def alias_of(clients, function: str) -> dict:
    found = clients["lambda"].get_alias(FunctionName=function, Name="live")
    return {"version": found["FunctionVersion"], "weights": (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}}


def status(client, version: str, release: str) -> dict:
    tags = client.get_model_version(MODEL, version).tags
    return {key.rsplit(".", 1)[1]: value for key, value in tags.items() if key.startswith(f"mpack.{release}.")}


def canary_figures(clients, function: str, version: str, invocations: int, errors: int, duration_ms: float) -> None:
    """What Lambda publishes for the requests its alias sent to ``version`` (moto's Lambda runs nothing)."""
    dimensions = [{"Name": "FunctionName", "Value": function}, {"Name": "Resource", "Value": f"{function}:live"}, {"Name": "ExecutedVersion", "Value": version}]
    now = datetime.now(UTC)
    clients["cloudwatch"].put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": now, "Value": invocations, "Unit": "Count"},
            {"MetricName": "Errors", "Dimensions": dimensions, "Timestamp": now, "Value": errors, "Unit": "Count"},
            {"MetricName": "Duration", "Dimensions": dimensions, "Timestamp": now, "Value": duration_ms, "Unit": "Milliseconds"},
        ],
    )


def test_the_alias_decides_what_serves(registry, aws, tmp_path):
    """First sync deploys; a re-run plans nothing; the alias moves -> a canary, promoted after its bake; a canary
    over its gates is rolled back, recorded as failed and not retried; the alias moved back serves the old version
    again without a build; a deleted alias removes nothing."""
    _, client = registry
    env, clients = aws
    config = releases(tmp_path, "prod", "sync-prod", canary=10, bake="15s")

    planned, report = sync(env, config, "--plan")
    assert planned.returncode == 0, planned.stderr
    assert report["outcome"] == "deployed" and not report["applied"]
    assert [line.split(" ")[0] for line in report["plan"]] == ["build", "deploy", "record"], report["plan"]
    assert "sync-prod" not in [f["FunctionName"] for f in clients["lambda"].list_functions()["Functions"]]  # --plan changes nothing

    first, report = sync(env, config)
    assert first.returncode == 0, first.stderr
    assert report["outcome"] == "deployed" and report["applied"] and report["wanted"] == "1"
    assert alias_of(clients, "sync-prod") == {"version": "1", "weights": {}}
    assert status(client, "1", "prod") | {"since": "-"} == {"status": "serving", "share": "100", "since": "-", "where": "aws lambda sync-prod:live (us-east-1)", "served_by": "1"}
    version_1 = clients["lambda"].get_function_configuration(FunctionName="sync-prod", Qualifier="1")["Description"]
    assert version_1.startswith(f"mpack: {MODEL} 1 (models:/{MODEL}/1)"), version_1  # what serves is read back from AWS

    again, report = sync(env, config)
    assert again.returncode == 0 and report["outcome"] == "unchanged" and report["plan"] == [], again.stderr

    client.set_registered_model_alias(MODEL, "champion", "2")
    canary, report = sync(env, config)
    assert canary.returncode == 0, canary.stderr
    assert report["outcome"] == "canary" and alias_of(clients, "sync-prod") == {"version": "1", "weights": {"2": 0.1}}
    assert status(client, "2", "prod")["status"] == "canary" and status(client, "2", "prod")["share"] == "10"
    baking, report = sync(env, config)
    assert report["outcome"] == "baking" and report["plan"] == [] and 0 < report["bake_left_s"] <= 30, baking.stderr  # 15 s of bake + 15 s for the figures to arrive
    canary_figures(clients, "sync-prod", "2", invocations=200, errors=0, duration_ms=12.0)
    canary_figures(clients, "sync-prod", "1", invocations=1800, errors=0, duration_ms=11.0)
    time.sleep(max(report["bake_left_s"], 0) + 1)
    promoted, report = sync(env, config)
    assert promoted.returncode == 0, report["error"]
    assert report["outcome"] == "promoted" and "within the gates" in report["reason"] and "maximum" in report["reason"], report
    assert alias_of(clients, "sync-prod") == {"version": "2", "weights": {}}
    assert status(client, "2", "prod")["status"] == "serving" and status(client, "1", "prod")["status"] == "retired"

    client.set_registered_model_alias(MODEL, "champion", "3")
    assert sync(env, config)[1]["outcome"] == "canary"
    canary_figures(clients, "sync-prod", "3", invocations=100, errors=30, duration_ms=14.0)
    time.sleep(max(sync(env, config)[1]["bake_left_s"] or 0, 0) + 1)
    rolled, report = sync(env, config)
    assert rolled.returncode == 1 and report["outcome"] == "rolled back", rolled.stderr
    assert "error rate 30.00% is over 1%" in report["reason"]
    assert alias_of(clients, "sync-prod") == {"version": "2", "weights": {}}
    assert status(client, "3", "prod")["status"] == "failed" and "error rate" in status(client, "3", "prod")["reason"]
    skipped, report = sync(env, config)
    assert skipped.returncode == 0 and report["outcome"] == "skipped" and report["plan"] == [], skipped.stderr
    assert "not retried" in report["warnings"][0]

    versions_before = _versions(clients, "sync-prod")
    client.set_registered_model_alias(MODEL, "champion", "1")
    back, report = sync(env, config)
    assert back.returncode == 0 and report["outcome"] == "served again", back.stderr
    assert not any(line.startswith("build") for line in report["plan"])
    assert _versions(clients, "sync-prod") == versions_before  # nothing built or published
    assert alias_of(clients, "sync-prod") == {"version": "1", "weights": {}}
    assert status(client, "1", "prod")["status"] == "serving" and status(client, "2", "prod")["status"] == "retired"

    client.delete_registered_model_alias(MODEL, "champion")
    gone, report = sync(env, config)
    assert gone.returncode == 0 and report["outcome"] == "alias missing" and report["plan"] == [], gone.stderr
    assert "nothing is removed" in report["warnings"][0]
    assert alias_of(clients, "sync-prod") == {"version": "1", "weights": {}}
    client.set_registered_model_alias(MODEL, "champion", "1")


def _versions(clients, function: str) -> list[str]:
    return [v["Version"] for v in clients["lambda"].list_versions_by_function(FunctionName=function)["Versions"]]


def test_a_version_failing_its_smoke_test_is_recorded_and_not_retried(registry, aws, tmp_path):
    _, client = registry
    env, clients = aws
    client.set_registered_model_alias(MODEL, "champion", "1")
    assert sync(env, releases(tmp_path, "guarded", "sync-guarded"))[1]["outcome"] == "deployed"
    client.set_registered_model_alias(MODEL, "champion", "2")
    echoing = releases(tmp_path, "guarded", "sync-guarded", **{"smoke-test": "aws"})  # moto's Lambda echoes: no prediction
    failed, report = sync(env, echoing)
    assert failed.returncode == 1 and report["outcome"] == "failed", report
    assert "the smoke test failed" in report["reason"]
    assert alias_of(clients, "sync-guarded") == {"version": "1", "weights": {}}  # the alias stays
    recorded = status(client, "2", "guarded")
    assert recorded["status"] == "failed" and "smoke test failed" in recorded["reason"]
    again, report = sync(env, echoing)
    assert again.returncode == 0 and report["outcome"] == "skipped" and report["plan"] == [], report
    retried, report = sync(env, echoing, "--retry")
    assert retried.returncode == 1 and report["outcome"] == "failed"  # --retry tries it again (and it fails again)
    client.set_registered_model_alias(MODEL, "champion", "1")
    assert sync(env, echoing)[1]["outcome"] == "unchanged"
    client.set_registered_model_alias(MODEL, "champion", "2")  # the alias moved away and back: tried again
    moved_back, report = sync(env, echoing)
    assert moved_back.returncode == 1 and report["outcome"] == "failed", report
    client.set_registered_model_alias(MODEL, "champion", "1")


@pytest.mark.parametrize("kill_after", ["publish a version", "point alias live"])
def test_a_sync_killed_at_a_step_is_finished_by_the_next(registry, aws, tmp_path, kill_after):
    """SIGKILL right after a step (the version published but not serving; the alias moved but nothing recorded):
    the lease left behind names a dead process of this host, so the next sync takes it over and converges."""
    _, client = registry
    env, clients = aws
    wanted = "2" if kill_after.startswith("publish") else "3"
    client.set_registered_model_alias(MODEL, "champion", wanted)
    config = releases(tmp_path, "killed", "sync-killed")
    process = subprocess.Popen([sys.executable, "-m", "mpack.packager.cli", "sync", "--config", str(config)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, **env})
    seen = []
    for line in process.stderr:
        seen.append(line)
        if kill_after in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    finished, report = sync(env, config)
    assert finished.returncode == 0, report
    assert report["outcome"] in ("deployed", "recorded"), report
    serving = alias_of(clients, "sync-killed")["version"]
    described = clients["lambda"].get_function_configuration(FunctionName="sync-killed", Qualifier=serving)["Description"]
    assert described.startswith(f"mpack: {MODEL} {wanted} "), described
    assert status(client, wanted, "killed")["status"] == "serving"
    assert sync(env, config)[1]["outcome"] == "unchanged"
    lease = clients["lambda"].get_alias(FunctionName="sync-killed", Name="mpack-sync-lease")["Description"]
    assert int(lease.rsplit("until=", 1)[1]) <= time.time(), lease  # released: expired by its holder


def test_two_syncs_started_together_apply_once(registry, aws, tmp_path):
    _, client = registry
    env, clients = aws
    config = releases(tmp_path, "pair", "sync-pair")
    client.set_registered_model_alias(MODEL, "champion", "1")
    assert sync(env, config)[1]["outcome"] == "deployed"
    client.set_registered_model_alias(MODEL, "champion", "2")
    command = [sys.executable, "-m", "mpack.packager.cli", "sync", "--config", str(config), "--json"]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}) for _ in range(2)]
    reports = [json.loads(p.communicate(timeout=600)[0])["releases"][0] for p in both]
    assert all(p.returncode == 0 for p in both), reports
    applied = [r for r in reports if r["applied"]]
    assert len(applied) == 1, reports
    other = next(r for r in reports if not r["applied"])
    assert other["outcome"] in ("held", "unchanged"), other  # held while the first applied, or it came after and found it done
    if other["outcome"] == "held":
        assert "another sync holds the lease" in other["reason"]
    described = [v["Description"] for v in clients["lambda"].list_versions_by_function(FunctionName="sync-pair")["Versions"]]
    assert sum(d.startswith(f"mpack: {MODEL} 2 ") for d in described) == 1  # published once


def test_webhooks_wake_a_listening_sync_and_forged_ones_are_refused(registry, aws, tmp_path):
    import urllib.error
    import urllib.request

    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent

    _, client = registry
    env, clients = aws
    client.set_registered_model_alias(MODEL, "champion", "1")
    config = releases(tmp_path, "hooked", "sync-hooked")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mpack.packager.cli", "sync", "--config", str(config), "--listen", str(port), "--secret", "s3cret"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, **env},
    )  # fmt: skip
    try:
        _wait_for(lambda: _alias_or_none(clients, "sync-hooked") == {"version": "1", "weights": {}}, 300, process)  # its first sync
        events = [WebhookEvent(WebhookEntity.MODEL_VERSION_ALIAS, WebhookAction.CREATED)]
        hook = client.create_webhook(name="mpack-sync", url=f"http://127.0.0.1:{port}/", events=events, secret="s3cret")
        forged = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b'{"entity": "model_version_alias", "action": "created", "data": {}}', method="POST")
        forged.add_header("X-MLflow-Signature", "v1,AAAA")
        forged.add_header("X-MLflow-Delivery-Id", "x")
        forged.add_header("X-MLflow-Timestamp", str(int(time.time())))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401 and b"does not match" in refused.value.read()
        client.set_registered_model_alias(MODEL, "champion", "2")  # MLflow posts the delivery; the sync follows
        _wait_for(lambda: _served_model(clients, "sync-hooked") == "2", 300, process)
        client.delete_webhook(hook.webhook_id)
    except AssertionError as failure:
        process.send_signal(signal.SIGTERM)
        raise AssertionError(f"{failure}\n{process.communicate(timeout=60)[1][-4000:]}") from None
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[1]
    assert "webhook refused: X-MLflow-Signature does not match" in output
    assert "webhook model_version_alias.created" in output, output[-3000:]
    assert process.returncode == 0, output[-3000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alias_or_none(clients, function: str):
    try:
        return alias_of(clients, function)
    except Exception:  # noqa: BLE001 - not there yet
        return None


def _served_model(clients, function: str) -> str | None:
    found = _alias_or_none(clients, function)
    if not found or found["weights"]:
        return None
    return clients["lambda"].get_function_configuration(FunctionName=function, Qualifier=found["version"])["Description"].split()[2]


def _wait_for(condition, seconds: float, process) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the sync exited: {process.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_function_settings_left_undone_are_finished(registry, aws, tmp_path):
    """A sync killed after moving the alias but before the function's own settings (here: reserved concurrency,
    removed by hand to stand for it) leaves the version serving; the next sync sees the setting missing and
    plans the deploy again, which applies only what is missing."""
    _, client = registry
    env, clients = aws
    client.set_registered_model_alias(MODEL, "champion", "1")
    config = releases(tmp_path, "settled", "sync-settled", reserved=3)
    assert sync(env, config)[1]["outcome"] == "deployed"
    assert clients["lambda"].get_function_concurrency(FunctionName="sync-settled")["ReservedConcurrentExecutions"] == 3
    clients["lambda"].delete_function_concurrency(FunctionName="sync-settled")
    finished, report = sync(env, config)
    assert finished.returncode == 0 and report["outcome"] == "deployed" and "redeployed with the release's settings" in report["reason"], report
    assert clients["lambda"].get_function_concurrency(FunctionName="sync-settled")["ReservedConcurrentExecutions"] == 3
    assert alias_of(clients, "sync-settled")["weights"] == {} and status(client, "1", "settled")["status"] == "serving"
    assert sync(env, config)[1]["outcome"] == "unchanged"
