"""`mpack deploy`, `promote`, `rollback` through the real CLI against moto's server on 127.0.0.1.

What is real: the CLI, boto3 and every AWS call (IAM role and inline policy, Lambda functions,
versions, aliases with weighted routing, S3 uploads, function URLs, reserved concurrency) as moto's
server implements them; the bundles, built from registered models. What is not: moto cannot run
code (its Lambda `invoke` is configured with use_docker=false and echoes the payload back), so the
smoke-test gate is exercised two ways: `--smoke-test local` runs the very zip being deployed on
mpack's local Lambda platform (a real model answering), and `--smoke-test aws` invokes the version
on moto, whose echo is not a prediction, which the gate must refuse (alias unchanged). moto answers
404 for provisioned concurrency, which `mpack deploy` does not offer yet.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import boto3
import pytest
from mpack.handlers.manifest import Manifest

from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.moto import CREDENTIALS, aws_clients, moto_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def aws_env(moto_endpoint, tmp_path_factory):
    return {"AWS_ENDPOINT_URL": moto_endpoint, **CREDENTIALS, "MPACK_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def clients(aws_env):
    return aws_clients(aws_env["AWS_ENDPOINT_URL"], "lambda", "iam", "s3")


def deploy(aws_env, *args: str):
    result = mpack(*args, "--json", env=aws_env, timeout=300)
    return result, (json.loads(result.stdout) if result.returncode == 0 else None)


def alias(clients, function: str) -> dict:
    found = clients["lambda"].get_alias(FunctionName=function, Name="live")
    return {"version": found["FunctionVersion"], "weights": (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}}


def test_first_deploy_then_unchanged_redeploy_then_canary_promote_rollback(built, aws_env, clients):
    v1, v2 = built("models:/fraud/1").artifact, built("models:/fraud/2").artifact
    first, report = deploy(aws_env, "deploy", str(v1), "--function", "fraud", "--smoke-test", "local", "--yes", "--reserved", "5", "--function-url", "iam")
    assert first.returncode == 0, first.stderr
    assert report["changed"] and report["alias_version"] == "1" and report["function_url_auth"] == "AWS_IAM"
    assert any("3 predictions for the input example (local platform)" in check for check in report["checks"])
    role = clients["iam"].get_role(RoleName="mpack-fraud")["Role"]
    assert json.loads(json.dumps(role["AssumeRolePolicyDocument"]))["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    logs = clients["iam"].get_role_policy(RoleName="mpack-fraud", PolicyName="mpack-logs")["PolicyDocument"]
    assert all(statement["Resource"].startswith("arn:aws:logs:us-east-1:") for statement in logs["Statement"])  # its own log group only
    assert clients["lambda"].get_function_concurrency(FunctionName="fraud")["ReservedConcurrentExecutions"] == 5

    again, report = deploy(aws_env, "deploy", str(v1), "--function", "fraud", "--smoke-test", "local", "--yes", "--reserved", "5", "--function-url", "iam")
    assert again.returncode == 0, again.stderr
    assert report["plan"] == [] and not report["changed"] and report["versions"] == ["1"]  # nothing planned, no version published

    canary, report = deploy(aws_env, "deploy", str(v2), "--function", "fraud", "--canary", "10", "--smoke-test", "local", "--yes")
    assert canary.returncode == 0, canary.stderr
    assert alias(clients, "fraud") == {"version": "1", "weights": {"2": 0.1}}
    promoted, report = deploy(aws_env, "promote", "--function", "fraud", "--yes")
    assert promoted.returncode == 0, promoted.stderr
    assert alias(clients, "fraud") == {"version": "2", "weights": {}} and report["previous_version"] == "1"
    rolled, report = deploy(aws_env, "rollback", "--function", "fraud", "--yes")
    assert rolled.returncode == 0, rolled.stderr
    assert alias(clients, "fraud") == {"version": "1", "weights": {}}
    assert report["versions"] == ["1", "2"]  # nothing deleted


def test_an_interrupted_deploy_converges_and_function_url_none_removes_the_url(built, aws_env, clients):
    """A deploy killed between UpdateFunctionConfiguration and PublishVersion leaves $LATEST with the
    new settings and no version of them; re-running must publish one, not reuse version 1 (same
    code, old settings). Leaving --function-url out keeps the URL; --function-url none removes it."""
    bundle = built("models:/fraud/1").artifact
    first, report = deploy(aws_env, "deploy", str(bundle), "--function", "converge", "--env", "X=v2", "--function-url", "iam", "--smoke-test", "local", "--yes")
    assert first.returncode == 0, first.stderr
    clients["lambda"].update_function_configuration(FunctionName="converge", Environment={"Variables": {"X": "v3"}})  # ...then killed
    again, report = deploy(aws_env, "deploy", str(bundle), "--function", "converge", "--env", "X=v3", "--smoke-test", "local", "--yes")
    assert again.returncode == 0, again.stderr
    served = alias(clients, "converge")["version"]
    assert served == "2" and clients["lambda"].get_function_configuration(FunctionName="converge", Qualifier=served)["Environment"]["Variables"] == {"X": "v3"}
    assert report["function_url_auth"] == "AWS_IAM"  # not asked about: left as it was
    removed, report = deploy(aws_env, "deploy", str(bundle), "--function", "converge", "--env", "X=v3", "--function-url", "none", "--smoke-test", "local", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert report["function_url_auth"] is None and report["alias_version"] == "2"
    settled, report = deploy(aws_env, "deploy", str(bundle), "--function", "converge", "--env", "X=v3", "--function-url", "none", "--smoke-test", "local", "--yes")
    assert settled.returncode == 0 and report["plan"] == [] and not report["changed"]


def test_plan_changes_nothing_and_ci_without_yes_refuses(built, aws_env, clients):
    bundle = built("models:/fraud/1").artifact
    planned, report = deploy(aws_env, "deploy", str(bundle), "--function", "planned-only", "--plan")
    assert planned.returncode == 0, planned.stderr
    assert not report["applied"] and "create the function" in report["plan"] and "publish a version" in report["plan"]
    with pytest.raises(clients["lambda"].exceptions.ResourceNotFoundException):
        clients["lambda"].get_function(FunctionName="planned-only")
    refused = mpack("deploy", str(bundle), "--function", "planned-only", env=aws_env)  # stdin is not a terminal
    assert_clean_error(refused, "refusing to change AWS without --yes")
    with pytest.raises(clients["lambda"].exceptions.ResourceNotFoundException):
        clients["lambda"].get_function(FunctionName="planned-only")


def test_a_failing_smoke_test_leaves_the_alias_where_it_was(built, aws_env, clients, tmp_path):
    v1, v2 = built("models:/fraud/1").artifact, built("models:/fraud/2").artifact
    assert deploy(aws_env, "deploy", str(v1), "--function", "guarded", "--smoke-test", "local", "--yes")[0].returncode == 0
    echoed = mpack("deploy", str(v2), "--function", "guarded", "--smoke-test", "aws", "--yes", env=aws_env)
    assert_clean_error(echoed, "the smoke test failed", "the alias was not moved")  # moto echoes: not a prediction
    assert alias(clients, "guarded") == {"version": "1", "weights": {}}
    broken = tmp_path / "broken.zip"
    _corrupt_model(v2, broken)
    failed = mpack("deploy", str(broken), "--function", "guarded", "--smoke-test", "local", "--yes", env=aws_env)
    assert_clean_error(failed, "the smoke test failed", "ModelLoadError")
    assert alias(clients, "guarded") == {"version": "1", "weights": {}}


def test_a_zip_over_50_mb_goes_through_a_private_encrypted_bucket(built, aws_env, clients, tmp_path):
    large = tmp_path / "large.zip"
    shutil.copyfile(built("models:/fraud/1").artifact, large)
    with zipfile.ZipFile(large, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("padding.bin", os.urandom(52 * 1024 * 1024))  # incompressible
    result, report = deploy(aws_env, "deploy", str(large), "--function", "large", "--smoke-test", "local", "--yes", "--bucket", "mpack-test-artifacts")
    assert result.returncode == 0, result.stderr
    assert any(step.startswith("upload the code to s3://mpack-test-artifacts/large/") for step in report["plan"])
    objects = clients["s3"].list_objects_v2(Bucket="mpack-test-artifacts")["Contents"]
    assert objects and objects[0]["Size"] == large.stat().st_size
    encryption = clients["s3"].get_bucket_encryption(Bucket="mpack-test-artifacts")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert clients["s3"].get_public_access_block(Bucket="mpack-test-artifacts")["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    assert report["alias_version"] == "1"


def test_bad_settings_are_refused_before_touching_aws(built, aws_env, tmp_path):
    bundle = str(built("models:/fraud/1").artifact)
    assert_clean_error(mpack("deploy", bundle, "--function", "x", "--canary", "150", "--yes", env=aws_env), "--canary 150 must be a percentage")
    assert_clean_error(mpack("deploy", bundle, "--function", "bad name", "--yes", env=aws_env), "function name 'bad name' is not valid")
    assert_clean_error(mpack("deploy", bundle, "--function", "x", "--arch", "arm64", "--yes", env=aws_env), "--arch arm64 does not match the bundle, built for x86_64")
    assert_clean_error(mpack("deploy", str(tmp_path / "nothing.zip"), "--function", "x", "--yes", env=aws_env), "is not a bundle zip")
    assert_clean_error(mpack("promote", "--function", "never-deployed", "--yes", env=aws_env), "does not exist")
    no_region = {k: v for k, v in aws_env.items() if k != "AWS_REGION"}
    assert_clean_error(mpack("deploy", bundle, "--function", "x", "--yes", env={**no_region, "AWS_REGION": "", "AWS_DEFAULT_REGION": ""}), "no AWS region")


def _corrupt_model(source: Path, destination: Path) -> None:
    """The model file the manifest names (model.onnx, or a micro bundle's model_micro.py), damaged."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as copy:
        model = Manifest.from_bytes(original.read("mpack.json")).models[0].file
        for info in original.infolist():
            data = original.read(info.filename)
            copy.writestr(info, data[:-32] + b"\0" * 32 if info.filename == model else data)


def test_export_writes_sam_and_cloudformation_templates(built, tmp_path):
    import yaml

    bundle = str(built("models:/fraud/1").artifact)
    sam_file = tmp_path / "template.yaml"
    result = mpack("export", bundle, "--format", "sam", "--function", "fraud", "--canary", "10", "--function-url", "iam", "--output", str(sam_file))
    assert result.returncode == 0, result.stderr
    sam = yaml.safe_load(sam_file.read_text())
    function = sam["Resources"]["Function"]
    assert sam["Transform"] == "AWS::Serverless-2016-10-31" and function["Type"] == "AWS::Serverless::Function"
    assert function["Properties"]["AutoPublishAlias"] == "live" and function["Properties"]["Handler"] == "mpack_handler.handler"
    assert function["Properties"]["DeploymentPreference"]["Type"].startswith("Canary10Percent")
    assert function["Properties"]["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"} and function["Properties"]["CodeUri"] == bundle
    plain = mpack("export", bundle, "--format", "cloudformation", "--function", "fraud", "--canary", "10")
    assert plain.returncode == 0, plain.stderr
    template = yaml.safe_load(plain.stdout)
    types = {name: resource["Type"] for name, resource in template["Resources"].items()}
    assert types == {"ExecutionRole": "AWS::IAM::Role", "Function": "AWS::Lambda::Function", "Version": "AWS::Lambda::Version", "Alias": "AWS::Lambda::Alias"}
    assert template["Resources"]["Alias"]["Properties"]["RoutingConfig"]["AdditionalVersionWeights"][0]["FunctionWeight"] == 0.1
    assert_clean_error(mpack("export", bundle, "--format", "terraform", "--function", "fraud"), "--format terraform is not one of sam, cloudformation")


def test_settings_from_mpack_toml_with_flags_winning_and_provisioned_in_the_plan(built, aws_env, tmp_path):
    """moto answers 404 to provisioned concurrency, so it is checked in the plan only."""
    bundle = str(built("models:/fraud/1").artifact)
    (tmp_path / "mpack.toml").write_text('[deploy]\nfunction = "from-file"\nmemory = 2048\nprovisioned = 2\nenv = {MODE = "batch"}\n')
    planned = mpack("deploy", bundle, "--plan", "--json", "--memory", "512", cwd=tmp_path, env=aws_env)
    assert planned.returncode == 0, planned.stderr
    report = json.loads(planned.stdout)
    assert report["function"] == "from-file" and not report["applied"]
    assert "keep 2 instances initialized on alias live (provisioned concurrency)" in report["plan"]
    (tmp_path / "mpack.toml").write_text('[deploy]\nfunction = "x"\nmemroy = 1\n')
    assert_clean_error(mpack("deploy", bundle, "--plan", cwd=tmp_path, env=aws_env), "unknown deploy setting(s) memroy")


def test_an_image_deploy_pushes_to_the_repository_and_pins_the_digest(built, base_image, docker_client, registry, aws_env, clients):
    """ECR's API (repository, login token) is moto's; the push goes to Debian's docker-registry on
    127.0.0.1, named by MPACK_ECR_REGISTRY, since moto has no registry behind its ECR API."""
    image = built("models:/fraud@champion", target="lambda-image", base_image=base_image, tag="mpack-test/fraud:1-lambda-image")
    env = {**aws_env, "MPACK_ECR_REGISTRY": registry}
    result, report = deploy(env, "deploy", image.artifact, "--function", "imagefn", "--smoke-test", "local", "--yes")
    assert result.returncode == 0, result.stderr
    assert report["plan"][1:3] == ["create ECR repository imagefn if missing (scan on push, immutable tags)", "push the image (the function will reference its digest, not a tag)"]
    assert any("(local platform)" in check for check in report["checks"]) and report["alias_version"] == "1"
    uri = clients["lambda"].get_function(FunctionName="imagefn")["Code"]["ImageUri"]
    assert uri.startswith(f"{registry}/imagefn@sha256:")
    repository = boto3.client("ecr", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t").describe_repositories(
        repositoryNames=["imagefn"]
    )["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE" and repository["imageScanningConfiguration"]["scanOnPush"]
    assert docker_client.images.pull(uri).id == docker_client.images.get(image.artifact).id  # the digest is this image
    again, report = deploy(env, "deploy", image.artifact, "--function", "imagefn", "--smoke-test", "local", "--yes")
    assert again.returncode == 0, again.stderr
    assert report["plan"] == []
