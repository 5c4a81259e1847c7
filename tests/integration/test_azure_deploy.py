"""`mpack deploy/rollback --platform azure` through the real command line: packages go to real Blob
Storage (Azurite, started here), SAS URLs are real and read back over HTTP; the management calls go
to a minimal ARM stand-in (tests/helpers/azure_standins.py: ARM cannot run on this machine), which
records every request for the assertions below."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.helpers.azure_standins import ArmStandIn, Azurite
from tests.helpers.cli import assert_clean_error, mpack

TOKEN = "test-token-not-a-secret"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
APPS = Path(__file__).resolve().parent.parent / "fixtures" / "functions_apps"


@pytest.fixture(scope="module")
def azurite(runtime_cache):
    emulator = Azurite(runtime_cache)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def arm():
    standin = ArmStandIn(TOKEN)
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def bundles(built) -> tuple[Path, Path]:
    return built("models:/fraud@champion", target="azure").artifact, built("models:/fraud@challenger", target="azure").artifact


def _azure(arm: ArmStandIn, azurite: Azurite, *args: str, connection: bool = True):
    env = {"MPACK_AZURE_ARM_ENDPOINT": arm.url, "MPACK_AZURE_ACCESS_TOKEN": TOKEN, "REQUESTS_CA_BUNDLE": str(arm.cert), "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}
    if connection:
        env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
    return mpack(*args, "--resource-group", "rg", "--json", env=env)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _released(azurite: Azurite, container: str) -> tuple[bytes, dict]:
    blob = azurite.container(container).get_blob_client("released-package.zip")
    return blob.download_blob().readall(), blob.get_blob_properties().metadata


def test_flex_deploy_redeploy_new_version_and_rollback(arm, azurite, bundles):
    v1, v2 = bundles
    arm.add_flex_app("fraud-flex", f"{azurite.blob_endpoint}/app-package-fraud-flex")
    first = _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-flex", "--yes")
    assert first.returncode == 0, first.stderr
    done = json.loads(first.stdout)["done"]
    smoke = next(number for number, line in enumerate(done) if line.startswith("smoke test: the package answered its input example"))
    assert done[smoke - 1].startswith("upload ") and done[smoke + 1].startswith("release ")  # kept, smoke-tested, then released (as AWS: published, tested, then the alias)
    data, metadata = _released(azurite, "app-package-fraud-flex")
    assert data == v1.read_bytes() and metadata["mpack_sha256"] == _sha(v1) and metadata["mpack_model"] == "fraud:1"
    writes = arm.writes("fraud-flex")
    assert [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in writes] == [("PUT", "onedeploy"), ("POST", "syncfunctiontriggers")]
    assert writes[0]["body"] == {"properties": {"packageUri": f"{azurite.blob_endpoint}/app-package-fraud-flex/released-package.zip", "remoteBuild": False}}
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in arm.requests)

    again = _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-flex", "--yes")
    assert again.returncode == 0 and json.loads(again.stdout)["steps"] == [] and len(arm.writes("fraud-flex")) == 2

    second = _azure(arm, azurite, "deploy", str(v2), "--app", "fraud-flex", "--yes")
    assert second.returncode == 0, second.stderr
    data, metadata = _released(azurite, "app-package-fraud-flex")
    assert data == v2.read_bytes() and metadata["mpack_previous_sha256"] == _sha(v1)
    kept = {b.name for b in azurite.container("app-package-fraud-flex").list_blobs(name_starts_with="mpack/packages/")}
    assert kept == {f"mpack/packages/{_sha(v1)}.zip", f"mpack/packages/{_sha(v2)}.zip"}

    plan_only = _azure(arm, azurite, "rollback", "--platform", "azure", "--app", "fraud-flex", "--plan")
    assert plan_only.returncode == 0 and _released(azurite, "app-package-fraud-flex")[0] == v2.read_bytes()
    back = _azure(arm, azurite, "rollback", "--platform", "azure", "--app", "fraud-flex", "--yes")
    assert back.returncode == 0, back.stderr
    data, metadata = _released(azurite, "app-package-fraud-flex")
    assert data == v1.read_bytes() and metadata["mpack_previous_sha256"] == _sha(v2)  # rolling back again returns to v2
    assert len(arm.writes("fraud-flex")) == 6

    canary = _azure(arm, azurite, "deploy", str(v2), "--app", "fraud-flex", "--canary", "10", "--yes")
    assert_clean_error(canary, "Flex Consumption has none")


def test_flex_keeps_a_package_another_tool_deployed(arm, azurite, bundles):
    v1, _ = bundles
    arm.add_flex_app("legacy-flex", f"{azurite.blob_endpoint}/app-package-legacy")
    container = azurite.container("app-package-legacy")
    container.create_container()
    container.get_blob_client("released-package.zip").upload_blob(b"a package deployed by func publish", overwrite=True)
    result = _azure(arm, azurite, "deploy", str(v1), "--app", "legacy-flex", "--yes")
    assert result.returncode == 0, result.stderr
    foreign = hashlib.sha256(b"a package deployed by func publish").hexdigest()
    assert container.get_blob_client(f"mpack/packages/{foreign}.zip").download_blob().readall() == b"a package deployed by func publish"
    assert _released(azurite, "app-package-legacy")[1]["mpack_previous_sha256"] == foreign


def test_run_from_package_plan_sets_a_read_only_sas_url_and_rolls_back(arm, azurite, bundles):
    v1, v2 = bundles
    arm.add_package_url_app("fraud-premium", azurite.connection_string)
    assert _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-premium", "--yes", connection=False).returncode == 0
    first_url = arm.settings["fraud-premium"]["WEBSITE_RUN_FROM_PACKAGE"]
    with urllib.request.urlopen(first_url, timeout=30) as response:
        assert response.read() == v1.read_bytes()
    write = urllib.request.Request(first_url, data=b"tampered", method="PUT", headers={"x-ms-blob-type": "BlockBlob"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(write, timeout=30)
    assert refused.value.code == 403  # the SAS only reads
    assert arm.settings["fraud-premium"]["AzureWebJobsStorage"] == azurite.connection_string  # other settings kept

    second = _azure(arm, azurite, "deploy", str(v2), "--app", "fraud-premium", "--yes", connection=False)
    assert second.returncode == 0, second.stderr
    settings = arm.settings["fraud-premium"]
    assert settings["MPACK_PACKAGE_SHA256"] == _sha(v2) and settings["MPACK_PREVIOUS_PACKAGE"] == first_url
    back = _azure(arm, azurite, "rollback", "--platform", "azure", "--app", "fraud-premium", "--yes", connection=False)
    assert back.returncode == 0, back.stderr
    assert arm.settings["fraud-premium"]["WEBSITE_RUN_FROM_PACKAGE"] == first_url
    assert arm.writes("fraud-premium")[-1]["path"].endswith("/syncfunctiontriggers")


def test_a_package_that_fails_its_smoke_test_is_kept_but_never_served(arm, azurite, bundles, tmp_path):
    v1, _ = bundles
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(v1) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            if item.filename == "function_app.py":
                target.writestr(item, (APPS / "broken_app.py").read_bytes())
            elif not item.filename.startswith("__pycache__/function_app."):
                target.writestr(item, source.read(item))
    arm.add_flex_app("fraud-broken", f"{azurite.blob_endpoint}/app-package-broken")
    result = _azure(arm, azurite, "deploy", str(broken), "--app", "fraud-broken", "--yes")
    assert_clean_error(result, "step 2 of 5 failed (smoke-test package", "a_dependency_the_bundle_forgot", "done before it: 1. upload", "traffic did not move")
    container = azurite.container("app-package-broken")
    assert arm.writes("fraud-broken") == [] and not container.get_blob_client("released-package.zip").exists()  # nothing released, nothing deployed
    assert [b.name for b in container.list_blobs()] == [f"mpack/packages/{_sha(broken)}.zip"]  # kept, as AWS keeps a published version


def test_deploy_errors_name_what_is_wrong(arm, azurite, bundles, built):
    v1, _ = bundles
    missing = _azure(arm, azurite, "deploy", str(v1), "--app", "no-such-app", "--yes")
    assert_clean_error(missing, "no-such-app")
    lambda_zip = built("models:/fraud@champion").artifact
    wrong = _azure(arm, azurite, "deploy", str(lambda_zip), "--platform", "azure", "--app", "fraud-flex", "--yes")
    assert_clean_error(wrong, "built for --target lambda")
    arm.add_flex_app("fraud-ci", f"{azurite.blob_endpoint}/app-package-ci")
    no_yes = _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-ci")
    assert_clean_error(no_yes, "without --yes")
    arm.add_flex_app("py312-app", f"{azurite.blob_endpoint}/app-package-py312")
    arm.sites["py312-app"]["properties"]["functionAppConfig"]["runtime"]["version"] = "3.12"
    assert_clean_error(_azure(arm, azurite, "deploy", str(v1), "--app", "py312-app", "--yes"), "runs Python 3.12", "--python 3.12")
    arm.add_flex_app("small-app", f"{azurite.blob_endpoint}/app-package-small")
    arm.sites["small-app"]["properties"]["functionAppConfig"]["scaleAndConcurrency"]["instanceMemoryMB"] = 512
    assert_clean_error(_azure(arm, azurite, "deploy", str(v1), "--app", "small-app", "--yes"), "512 MB", "--instance-memory 512")
    bad_token = mpack(
        "deploy",
        str(v1),
        "--app",
        "fraud-ci",
        "--resource-group",
        "rg",
        "--yes",
        env={"MPACK_AZURE_ARM_ENDPOINT": arm.url, "MPACK_AZURE_ACCESS_TOKEN": "wrong", "REQUESTS_CA_BUNDLE": str(arm.cert), "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION},
    )
    assert_clean_error(bad_token, "credentials")


def test_export_bicep_and_arm_describe_one_flex_app(bundles, tmp_path):
    """No ARM or Bicep compiler runs here: the templates are checked for what ARM would refuse —
    unbalanced expressions, references to resources or parameters that are not declared, and the
    settings a Flex app needs (FC1 plan, blob deployment storage by identity, the bundle's Python
    and instance memory)."""
    import re

    import yaml

    v1, _ = bundles
    arm_file, bicep_file = tmp_path / "app.json", tmp_path / "app.bicep"
    assert mpack("export", str(v1), "--format", "arm", "--output", str(arm_file)).returncode == 0
    assert mpack("export", str(v1), "--output", str(bicep_file)).returncode == 0  # bicep by default for an azure zip
    template = json.loads(arm_file.read_text())
    types = [r["type"] for r in template["resources"]]
    assert types == [
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Storage/storageAccounts/blobServices",
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.Web/serverfarms",
        "Microsoft.Web/sites",
        "Microsoft.Authorization/roleAssignments",
    ]
    plan = template["resources"][3]
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    site = template["resources"][4]
    config = site["properties"]["functionAppConfig"]
    assert site["kind"] == "functionapp,linux" and site["identity"] == {"type": "SystemAssigned"}
    assert config["runtime"] == {"name": "python", "version": "3.11"} and config["deployment"]["storage"]["authentication"]["type"] == "SystemAssignedIdentity"
    assert template["parameters"]["instanceMemoryMB"]["defaultValue"] == 2048
    expressions = [v for v in re.findall(r'"(\[[^"]*\])"', arm_file.read_text())]
    for expression in expressions:
        assert expression.count("(") == expression.count(")"), expression
        for name in re.findall(r"parameters\('(\w+)'\)", expression):
            assert name in template["parameters"], name
    declared_ids = {f"[resourceId('{r['type']}'" for r in template["resources"]}
    for resource in template["resources"]:
        for dependency in resource.get("dependsOn", []):
            assert any(dependency.startswith(prefix) for prefix in declared_ids), dependency
    bicep = bicep_file.read_text()
    symbols = re.findall(r"^resource (\w+) '", bicep, re.MULTILINE)
    params = re.findall(r"^param (\w+) ", bicep, re.MULTILINE)
    assert symbols == ["storage", "blobService", "deploymentContainer", "plan", "functionApp", "storageRole"]
    for used in re.findall(r"\b(\w+)\.(?:id|name|properties|identity)\b", bicep):
        assert used in symbols, used
    for used in re.findall(r"\$\{(?:take\()?(\w+)", bicep):
        assert used in params or used in ("uniqueString", "storage"), used
    assert bicep.count("{") == bicep.count("}") and bicep.count("[") == bicep.count("]")
    workflow = yaml.safe_load((Path(__file__).resolve().parents[2] / "templates" / "ci" / "github-actions-azure.yml").read_text())
    commands = [step.get("run", "") for step in workflow["jobs"]["deploy"]["steps"]]
    assert any("--target azure" in c for c in commands) and any("mpack deploy" in c and "--yes" in c for c in commands)


def test_slot_canary_then_promote_and_a_canary_rolled_back(arm, azurite, bundles):
    """A plan with slots (Premium): the new package on slot staging with a ramp-up rule, production
    unchanged until promote; a rollback during a canary only takes the traffic back."""
    v1, v2 = bundles
    arm.add_package_url_app("fraud-slots", azurite.connection_string)
    assert _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-slots", "--yes", connection=False).returncode == 0
    production_url = arm.settings["fraud-slots"]["WEBSITE_RUN_FROM_PACKAGE"]

    canary = _azure(arm, azurite, "deploy", str(v2), "--app", "fraud-slots", "--canary", "10", "--yes", connection=False)
    assert canary.returncode == 0, canary.stderr
    assert arm.settings["fraud-slots"]["WEBSITE_RUN_FROM_PACKAGE"] == production_url  # production untouched
    slot = arm.slots[("fraud-slots", "staging")]
    assert slot["MPACK_PACKAGE_SHA256"] == _sha(v2)
    with urllib.request.urlopen(slot["WEBSITE_RUN_FROM_PACKAGE"], timeout=30) as response:
        assert response.read() == v2.read_bytes()
    assert arm.web_config["fraud-slots"]["experiments"]["rampUpRules"] == [{"name": "staging", "actionHostName": "fraud-slots-staging.azurewebsites.net", "reroutePercentage": 10.0}]
    again = _azure(arm, azurite, "deploy", str(v2), "--app", "fraud-slots", "--canary", "10", "--yes", connection=False)
    assert json.loads(again.stdout)["steps"] == []
    blocked = _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-slots", "--yes", connection=False)
    assert_clean_error(blocked, "a canary is running", "promote")

    promoted = _azure(arm, azurite, "promote", "--platform", "azure", "--app", "fraud-slots", "--yes", connection=False)
    assert promoted.returncode == 0, promoted.stderr
    settings = arm.settings["fraud-slots"]
    assert settings["MPACK_PACKAGE_SHA256"] == _sha(v2) and settings["WEBSITE_RUN_FROM_PACKAGE"] == slot["WEBSITE_RUN_FROM_PACKAGE"]
    assert settings["MPACK_PREVIOUS_PACKAGE"] == production_url
    assert arm.web_config["fraud-slots"]["experiments"]["rampUpRules"] == []

    assert _azure(arm, azurite, "deploy", str(v1), "--app", "fraud-slots", "--canary", "25", "--yes", connection=False).returncode == 0
    off = _azure(arm, azurite, "rollback", "--platform", "azure", "--app", "fraud-slots", "--yes", connection=False)
    assert off.returncode == 0, off.stderr
    assert arm.web_config["fraud-slots"]["experiments"]["rampUpRules"] == []
    assert arm.settings["fraud-slots"]["MPACK_PACKAGE_SHA256"] == _sha(v2)  # production kept serving v2
    no_canary = _azure(arm, azurite, "promote", "--platform", "azure", "--app", "fraud-slots", "--yes", connection=False)
    assert_clean_error(no_canary, "no canary is running")
