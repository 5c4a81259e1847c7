"""`mpack sync` to Azure Functions end to end: a real `mlflow server` (sqlite, proxied artifacts) holds a registered model
whose alias moves; packages and the lease go to real Blob Storage (Azurite); the management calls go to the ARM
stand-in (tests/helpers/azure_standins.py), which records them; every bundle is built for real in the model's own
environment and smoke-tested on the local Functions host.

What is not real: the stand-in runs no app, so Azure Monitor's figures for the canary slot are put into it by the
tests (as moto's CloudWatch figures are for AWS), and it answers them whatever the time window. Azure Monitor has no
percentile, so the verdict says the p99 gates were not measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.azure_standins import ArmStandIn, Azurite
from tests.helpers.cli import mpack, sync_report
from tests.helpers.mlflow_server import mlflow_server, register_versions

pytestmark = pytest.mark.slow
MODEL = "sync-azure-fraud"
TOKEN = "test-token-not-a-secret"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
APPS = Path(__file__).resolve().parent.parent / "fixtures" / "functions_apps"
# the real command line, its smoke test given a copy of the package whose function_app.py fails to import (the build
# itself refuses a package that does not answer, so a failing smoke test needs a package altered after it)
BROKEN_SMOKE = """
import dataclasses, runpy, sys, zipfile
import mpack.infra.azure.deployer as deployer
real = deployer.local_smoke
def broken(package):
    copy = package.path.with_name("broken-" + package.path.name)
    with zipfile.ZipFile(package.path) as source, zipfile.ZipFile(copy, "w") as target:
        for item in source.infolist():
            if item.filename == "function_app.py":
                target.writestr(item, BROKEN_APP)
            elif not item.filename.startswith("__pycache__/function_app."):
                target.writestr(item, source.read(item))
    return real(dataclasses.replace(package, path=copy))
deployer.local_smoke = broken
sys.argv[0] = "mpack"
runpy.run_module("mpack.packager.cli", run_name="__main__")
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri, register_versions(uri, MODEL)


@pytest.fixture(scope="module")
def azure(registry, runtime_cache):
    azurite, arm = Azurite(runtime_cache), ArmStandIn(TOKEN)
    env = {
        "MPACK_AZURE_ARM_ENDPOINT": arm.url, "MPACK_AZURE_ACCESS_TOKEN": TOKEN, "REQUESTS_CA_BUNDLE": str(arm.cert), "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string, "MLFLOW_TRACKING_URI": registry[0], "MPACK_CACHE_DIR": str(runtime_cache),
    }  # fmt: skip
    yield env, arm, azurite
    arm.stop()
    azurite.stop()


def releases(folder: Path, name: str, app: str, **extra) -> Path:
    settings = {"name": name, "model": f"models:/{MODEL}@champion", "platform": "azure", "app": app, "resource-group": "rg", "smoke-test": "local", **extra}
    lines = ["[[release]]", *(f"{key} = {json.dumps(value)}" for key, value in settings.items())]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sync(env, config: Path, *args: str, broken_smoke: bool = False) -> tuple[subprocess.CompletedProcess, dict]:
    if broken_smoke:
        script = BROKEN_SMOKE.replace("BROKEN_APP", repr((APPS / "broken_app.py").read_bytes()))
        result = subprocess.run([sys.executable, "-c", script, "sync", "--config", str(config), "--json", *args], check=False, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    else:
        result = mpack("sync", "--config", str(config), "--json", *args, env=env, timeout=600)
    return result, sync_report(result)


def status(client, version: str, release: str) -> dict:
    tags = client.get_model_version(MODEL, version).tags
    return {key.rsplit(".", 1)[1]: value for key, value in tags.items() if key.startswith(f"mpack.{release}.")}


def kept(azurite: Azurite, container: str, prefix: str) -> dict:
    """sha256 -> the model version recorded on each package kept."""
    return {b.metadata["mpack_sha256"]: b.metadata.get("mpack_model") for b in azurite.container(container).list_blobs(name_starts_with=prefix, include=["metadata"]) if b.name.endswith(".zip")}


def lease_until(azurite: Azurite, container: str, app: str) -> int:
    return int(azurite.container(container).get_blob_client(f"mpack-sync-lease/{app}").get_blob_properties().metadata["until"])


def test_the_alias_decides_what_serves_on_a_plan_with_slots(registry, azure, tmp_path):
    """First sync deploys; a re-run plans nothing; the alias moves -> a canary on slot staging, promoted after its bake
    from Azure Monitor's figures; a canary over its gates is rolled back, recorded as failed and not retried; the alias
    moved back serves the kept package again without a build; a deleted alias removes nothing."""
    _, client = registry
    env, arm, azurite = azure
    arm.add_package_url_app("sync-slots", azurite.connection_string)
    config = releases(tmp_path, "prod", "sync-slots", canary=10, bake="15s")

    planned, report = sync(env, config, "--plan")
    assert planned.returncode == 0, planned.stderr
    assert report["outcome"] == "deployed" and not report["applied"]
    assert [line.split(" ")[0] for line in report["plan"]] == ["build", "deploy", "record"], report["plan"]
    assert "for azure" in report["plan"][0] and arm.writes("sync-slots") == []  # --plan changes nothing

    first, report = sync(env, config)
    assert first.returncode == 0, first.stderr
    assert report["outcome"] == "deployed" and report["applied"] and report["wanted"] == "1", report
    v1 = arm.settings["sync-slots"]["MPACK_PACKAGE_SHA256"]
    assert kept(azurite, "mpack-packages", "sync-slots/") == {v1: f"{MODEL}:1"}  # what serves is read back from Azure
    assert status(client, "1", "prod") | {"since": "-"} == {"status": "serving", "share": "100", "since": "-", "where": "azure functions sync-slots (rg)", "served_by": v1}
    assert lease_until(azurite, "mpack-packages", "sync-slots") <= time.time()  # released: expired by its holder

    writes = len(arm.writes("sync-slots"))
    again, report = sync(env, config)
    assert again.returncode == 0 and report["outcome"] == "unchanged" and report["plan"] == [], again.stderr
    assert len(arm.writes("sync-slots")) == writes

    client.set_registered_model_alias(MODEL, "champion", "2")
    canary, report = sync(env, config)
    assert canary.returncode == 0 and report["outcome"] == "canary", canary.stderr
    slot = arm.slots[("sync-slots", "staging")]
    v2 = slot["MPACK_PACKAGE_SHA256"]
    assert arm.settings["sync-slots"]["MPACK_PACKAGE_SHA256"] == v1  # production untouched
    assert arm.web_config["sync-slots"]["experiments"]["rampUpRules"][0]["reroutePercentage"] == 10.0
    assert abs(int(slot["MPACK_CANARY_SINCE"]) - time.time()) < 120  # the bake's start, on the slot
    assert status(client, "2", "prod")["status"] == "canary" and status(client, "2", "prod")["share"] == "10"
    baking, report = sync(env, config)
    assert report["outcome"] == "baking" and report["plan"] == [] and 0 < report["bake_left_s"] <= 30, baking.stderr
    arm.metrics[("sync-slots", "staging")] = {"Requests": 200, "Http5xx": 0, "HttpResponseTime": 0.012}
    time.sleep(max(report["bake_left_s"], 0) + 1)
    promoted, report = sync(env, config)
    assert promoted.returncode == 0, report["error"]
    assert report["outcome"] == "promoted" and "within the gates: 200 requests, 0.00% errors" in report["reason"], report
    assert "p99 not measured" in report["reason"] and "were not applied" in report["reason"] and "12.0 ms" in report["reason"]  # never pretended
    assert arm.settings["sync-slots"]["MPACK_PACKAGE_SHA256"] == v2 and arm.web_config["sync-slots"]["experiments"]["rampUpRules"] == []
    assert status(client, "2", "prod")["status"] == "serving" and status(client, "1", "prod")["status"] == "retired"
    assert any("/providers/Microsoft.Insights/metrics" in r["path"] and "/slots/staging/" in r["path"] for r in arm.requests)

    client.set_registered_model_alias(MODEL, "champion", "3")
    assert sync(env, config)[1]["outcome"] == "canary"
    arm.metrics[("sync-slots", "staging")] = {"Requests": 100, "Http5xx": 30, "HttpResponseTime": 0.014}
    time.sleep(max(sync(env, config)[1]["bake_left_s"] or 0, 0) + 1)
    rolled, report = sync(env, config)
    assert rolled.returncode == 1 and report["outcome"] == "rolled back", rolled.stderr
    assert "error rate 30.00% is over 1%" in report["reason"]
    assert arm.settings["sync-slots"]["MPACK_PACKAGE_SHA256"] == v2 and arm.web_config["sync-slots"]["experiments"]["rampUpRules"] == []
    assert status(client, "3", "prod")["status"] == "failed" and "error rate" in status(client, "3", "prod")["reason"]
    skipped, report = sync(env, config)
    assert skipped.returncode == 0 and report["outcome"] == "skipped" and report["plan"] == [], skipped.stderr
    assert "not retried" in report["warnings"][0]

    packages_before = kept(azurite, "mpack-packages", "sync-slots/")
    client.set_registered_model_alias(MODEL, "champion", "1")
    back, report = sync(env, config)
    assert back.returncode == 0 and report["outcome"] == "served again", back.stderr
    assert not any(line.startswith("build") for line in report["plan"]), report["plan"]
    assert kept(azurite, "mpack-packages", "sync-slots/") == packages_before  # nothing built or uploaded
    settings = arm.settings["sync-slots"]
    assert settings["MPACK_PACKAGE_SHA256"] == v1 and f"/sync-slots/{v1}.zip?" in settings["WEBSITE_RUN_FROM_PACKAGE"]
    assert status(client, "1", "prod")["status"] == "serving" and status(client, "2", "prod")["status"] == "retired"

    writes = len(arm.writes("sync-slots"))
    client.delete_registered_model_alias(MODEL, "champion")
    gone, report = sync(env, config)
    assert gone.returncode == 0 and report["outcome"] == "alias missing" and report["plan"] == [], gone.stderr
    assert "nothing is removed" in report["warnings"][0]
    assert len(arm.writes("sync-slots")) == writes and arm.settings["sync-slots"]["MPACK_PACKAGE_SHA256"] == v1
    client.set_registered_model_alias(MODEL, "champion", "1")


def test_flex_releases_serve_again_and_a_failed_smoke_test_is_not_retried(registry, azure, tmp_path):
    """Flex Consumption: all at once (a canary is refused at plan: no slots); back to a kept package without a build;
    a version whose smoke test fails is recorded as failed, nothing is released, and the next sync skips it."""
    _, client = registry
    env, arm, azurite = azure
    container = "app-package-sync-flex"
    arm.add_flex_app("sync-flex", f"{azurite.blob_endpoint}/{container}")
    client.set_registered_model_alias(MODEL, "champion", "1")
    refused, report = sync(env, releases(tmp_path, "flex-canary", "sync-flex", canary=10), "--plan")
    assert refused.returncode == 1 and report["outcome"] == "error" and "Flex Consumption, which has no deployment slots" in report["reason"], report
    assert report["error"]["hint"].startswith("remove canary")
    config = releases(tmp_path, "flex", "sync-flex")

    first, report = sync(env, config)
    assert first.returncode == 0 and report["outcome"] == "deployed", first.stderr
    released = azurite.container(container).get_blob_client("released-package.zip").get_blob_properties().metadata
    v1 = released["mpack_sha256"]
    assert released["mpack_model"] == f"{MODEL}:1" and status(client, "1", "flex")["served_by"] == v1
    client.set_registered_model_alias(MODEL, "champion", "2")
    second, report = sync(env, config)
    assert second.returncode == 0 and report["outcome"] == "deployed", second.stderr
    assert azurite.container(container).get_blob_client("released-package.zip").get_blob_properties().metadata["mpack_model"] == f"{MODEL}:2"

    client.set_registered_model_alias(MODEL, "champion", "1")
    packages_before = kept(azurite, container, "mpack/packages/")
    back, report = sync(env, config)
    assert back.returncode == 0 and report["outcome"] == "served again", back.stderr
    assert not any(line.startswith("build") for line in report["plan"]) and kept(azurite, container, "mpack/packages/") == packages_before
    released = azurite.container(container).get_blob_client("released-package.zip").get_blob_properties().metadata
    assert released["mpack_sha256"] == v1 and released["mpack_model"] == f"{MODEL}:1"
    assert [r["path"].rsplit("/", 1)[-1] for r in arm.writes("sync-flex")][-2:] == ["onedeploy", "syncfunctiontriggers"]

    client.set_registered_model_alias(MODEL, "champion", "3")
    writes = len(arm.writes("sync-flex"))
    failed, report = sync(env, config, broken_smoke=True)
    assert failed.returncode == 1 and report["outcome"] == "failed", report
    assert "smoke test: the package fails to start" in report["reason"] and "a_dependency_the_bundle_forgot" in report["reason"]
    assert len(arm.writes("sync-flex")) == writes  # nothing deployed
    assert azurite.container(container).get_blob_client("released-package.zip").get_blob_properties().metadata["mpack_sha256"] == v1  # v1 still serves
    recorded = status(client, "3", "flex")
    assert recorded["status"] == "failed" and "smoke test" in recorded["reason"]
    again, report = sync(env, config)  # an unaltered smoke test would pass: the record is what stops it
    assert again.returncode == 0 and report["outcome"] == "skipped" and report["plan"] == [], report
    client.set_registered_model_alias(MODEL, "champion", "1")


def test_the_lease_lets_one_sync_apply(azure):
    """The lease blob, on real Blob Storage: created once (If-None-Match), taken over only when expired or its ETag
    unchanged, renewed and released by its holder only."""
    from mpack.infra.azure.lease import AzureLease

    _, _, azurite = azure
    container = azurite.container("lease-test")
    first, second = AzureLease(container, "app", 60), AzureLease(container, "app", 60)
    assert first.acquire() is None
    held = second.acquire()
    assert held is not None and held.holder == first.me and held.until > time.time()
    first.renew()
    first.release()
    assert lease_until(azurite, "lease-test", "app") == 0
    assert second.acquire() is None  # expired: taken over
    with pytest.raises(Exception, match="renew the sync lease"):
        first.etag = "0x0"
        first.renew()  # an ETag that is not the blob's any more: refused
    first.release()  # not the holder: nothing happens
    assert lease_until(azurite, "lease-test", "app") > time.time()
