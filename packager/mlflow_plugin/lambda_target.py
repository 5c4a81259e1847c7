"""``mpack-lambda`` (target URI ``mpack-lambda`` or ``mpack-lambda:/REGION``): an MLflow deployment is a Lambda
function and one of its aliases — ``NAME`` is the function's ``live`` alias (or ``-C alias``), ``NAME:ALIAS``
names another. create and update are ``mpack build`` then ``mpack deploy`` (plan from AWS's state, publish a
version, smoke-test it, move the alias, as a canary when asked); what serves is read back from AWS (each
published version records the registered model and version it serves), never from a local file."""

from __future__ import annotations

import json
import re
import sys

from mlflow.deployments import BaseDeploymentClient, PredictionsResponse
from mpack.packager.mlflow_plugin.bundles import BuildSettings
from mpack.packager.mlflow_plugin.config_keys import BUILD_KEYS, Key, keys_help, parse
from mpack.packager.mlflow_plugin.errors import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, as_mlflow_errors, refuse

TARGET = "mpack-lambda"
DEFAULT_ALIAS = "live"
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")

REGION_KEY = Key("region", "str", None, "the AWS region [default: the target URI's (mpack-lambda:/REGION), else $AWS_REGION]")
DEPLOY_KEYS = (
    REGION_KEY,
    Key("alias", "str", DEFAULT_ALIAS, "the alias that serves traffic (or name the deployment NAME:ALIAS)"),
    Key("target", "str", "lambda", "what to build: a zip (lambda) or a container image pushed to ECR (lambda-image)", ("lambda", "lambda-image")),
    Key("canary", "float", None, "percent of the alias's traffic for the new version (0-100, exclusive); the serving version keeps the rest [default: all at once]"),
    Key("memory", "int", 1024, "memory size in MB (128-10240)"),
    Key("timeout", "int", 30, "timeout in seconds (1-900)"),
    Key("role", "str", None, "execution role ARN [default: a least-privilege role mpack creates]"),
    Key("env", "list", (), "environment variables KEY=VALUE, comma-separated"),
    Key("smoke-test", "str", "aws", "before the alias moves: invoke the new version on AWS (aws), run the bundle on mpack's local Lambda platform (local), or none", ("aws", "local", "none")),
    Key("function-url", "str", "keep", "none (remove the URL mpack made), iam, public, or keep it as it is", ("none", "iam", "public", "keep")),
    Key("reserved", "int", None, "reserved concurrency"),
    Key("provisioned", "int", None, "provisioned concurrency on the alias"),
    Key("snapstart", "bool", None, "SnapStart on published versions (Python 3.12+ zips) [default: leave it as it is]"),
    Key("bucket", "str", None, "S3 bucket for zips over 50 MB [default: mpack-artifacts-<function>]"),
    Key("repository", "str", None, "lambda-image: the ECR repository [default: the function name]"),
    Key("arch", "str", None, "x86_64 or arm64 [default: this machine's]", ("x86_64", "arm64")),
    *BUILD_KEYS,
)
DELETE_KEYS = (REGION_KEY,)
LOCAL_KEYS = (
    Key("port", "int", 3000, "port of mpack serve (0: any free port)"),
    Key("host", "str", "127.0.0.1", "address mpack serve listens on"),
    Key("alias", "str", DEFAULT_ALIAS, "the alias the local Invoke API answers besides $LATEST"),
    Key("target", "str", "lambda", "lambda (a zip)", ("lambda",)),
    Key("arch", "str", None, "x86_64 or arm64 [default: this machine's]", ("x86_64", "arm64")),
    *BUILD_KEYS,
)


class MpackLambdaDeploymentClient(BaseDeploymentClient):
    """MLflow's deployment client for AWS Lambda, through mpack's build and deployer."""

    def __init__(self, target_uri):
        super().__init__(target_uri)
        self.region = _region_of_uri(target_uri)

    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):
        return self._deploy(name, model_uri, flavor, config, creating=True)

    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):
        """A new model (``model_uri``), or without one: the alias's canary version takes all the traffic."""
        if model_uri is None:
            return self._promote(name, config)
        return self._deploy(name, model_uri, flavor, config, creating=False)

    def delete_deployment(self, name, config=None, endpoint=None):
        """``NAME``: the function, its versions and the role mpack made for it; ``NAME:ALIAS``: that alias only.
        Deleting what is not there is not an error."""
        from mpack.infra.aws.removal import remove_alias, remove_function

        values = parse(config, DELETE_KEYS, TARGET)
        function, alias = _split(name)
        with as_mlflow_errors(TARGET):
            aws = self._aws(values["region"])
            if alias:
                remove_alias(aws, function, alias)
            else:
                removed = remove_function(aws, function)
                if removed.function:
                    _say(f"deleted function {function}" + (f" and its role {removed.role}" if removed.role else ""))

    def list_deployments(self, endpoint=None):
        """Every alias of every function mpack deployed, with what it serves (mpack sync's lease is no deployment)."""
        with as_mlflow_errors(TARGET):
            from mpack.infra.aws.lease import LEASE_ALIAS
            from mpack.infra.aws.session import aws_call

            aws = self._aws(None)
            found = []
            with aws_call("list the functions"):
                for page in aws.lambda_.get_paginator("list_functions").paginate():
                    found += [f["FunctionName"] for f in page["Functions"] if (f.get("Description") or "").startswith("mpack: ")]
                aliases = {function: [a["Name"] for page in aws.lambda_.get_paginator("list_aliases").paginate(FunctionName=function) for a in page["Aliases"] if a["Name"] != LEASE_ALIAS] for function in found}
            return [self._describe(aws, function, alias) for function in sorted(found) for alias in sorted(aliases[function])]

    def get_deployment(self, name, endpoint=None):
        function, alias = _split(name)
        with as_mlflow_errors(TARGET):
            described = self._describe(self._aws(None), function, alias or DEFAULT_ALIAS)
        if described.get("function_arn") is None:
            raise refuse(TARGET, f"no deployment {name} in {described['region']}", RESOURCE_DOES_NOT_EXIST)
        return described

    def predict(self, deployment_name=None, inputs=None, endpoint=None):
        """Through the deployed function: Lambda's Invoke of the alias with the MLflow scoring request."""
        from mpack.infra.aws.session import aws_call

        function, alias = _split(deployment_name)
        alias = alias or DEFAULT_ALIAS
        with as_mlflow_errors(TARGET), aws_call(f"invoke {function}:{alias}"):
            reply = self._aws(None).lambda_.invoke(FunctionName=function, Qualifier=alias, Payload=json.dumps(_scoring_request(inputs)).encode())
            body = reply["Payload"].read()
        try:
            answer = json.loads(body or b"null")
        except ValueError:
            raise refuse(TARGET, f"{function}:{alias} answered with something that is not JSON: {body[:200]!r}") from None
        if reply.get("FunctionError") or not isinstance(answer, dict) or "predictions" not in answer:
            message = answer.get("message") or answer.get("errorMessage") if isinstance(answer, dict) else None
            raise refuse(TARGET, f"{function}:{alias} did not predict: {message or str(answer)[:300]}")
        return PredictionsResponse(answer)

    def explain(self, deployment_name=None, df=None, endpoint=None):
        raise NotImplementedError(f"{TARGET} serves predictions only: mpack's bundles hold the converted model, not an explainer; compute explanations from the registered model itself")

    # -- the flow ---------------------------------------------------------------------------------

    def _deploy(self, name, model_uri, flavor, config, creating: bool) -> dict:
        from mpack.infra.aws import deployer
        from mpack.packager.deploy.aws_settings import desired_function, smoke_tester
        from mpack.packager.mlflow_plugin.bundles import build_bundle
        from mpack.packager.progress import RichProgress

        values = parse(config, DEPLOY_KEYS, TARGET)
        function, alias = _function_and_alias(name, values["alias"])
        with as_mlflow_errors(TARGET):
            aws = self._aws(values["region"])
            exists = _exists(aws, function)
            if creating and exists:
                raise refuse(TARGET, f"deployment {function} already exists in {aws.region}; change it with mlflow deployments update", RESOURCE_ALREADY_EXISTS)
            if not creating and not exists:
                raise refuse(TARGET, f"no deployment {function} in {aws.region}; make it with mlflow deployments create", RESOURCE_DOES_NOT_EXIST)
            bundle = build_bundle(model_uri, _build_settings(values), RichProgress())
            if flavor not in (None, "python_function", bundle.flavor):
                raise refuse(TARGET, f"flavor {flavor} is not what mpack serves for {model_uri} ({bundle.flavor}, through the pyfunc scoring protocol)")
            settings = _deploy_settings(values, bundle.artifact, function, alias, aws.region)
            desired = desired_function(settings, aws)
            smoke = smoke_tester(settings, aws, desired)
            planned = deployer.plan_deployment(aws, desired)
            outcome = deployer.apply(aws, planned, smoke, progress=lambda step: _say(f"  {step.line}"))
        return {"name": name, "flavor": bundle.flavor, **_served(outcome, bundle.manifest)}

    def _promote(self, name, config) -> dict:
        from mpack.infra.aws import deployer
        from mpack.packager.deploy.aws_settings import DeploySettings, desired_function

        needing_model = sorted(set(config or {}) - {"region", "alias"})
        if needing_model:
            raise refuse(TARGET, f"update without -m moves the alias's canary to all traffic; -C {', '.join(needing_model)} needs a model: pass -m URI")
        values = parse(config, (REGION_KEY, DEPLOY_KEYS[1]), TARGET)
        function, alias = _function_and_alias(name, values["alias"])
        with as_mlflow_errors(TARGET):
            aws = self._aws(values["region"])
            desired = desired_function(DeploySettings(None, function, alias, region=aws.region))
            planned = deployer.plan_promotion(aws, desired)
            outcome = deployer.apply(aws, planned, progress=lambda step: _say(f"  {step.line}"))
            described = self._describe(aws, function, alias)
        if not outcome.steps:
            _say(f"{function}: alias {alias} has no canary; it already serves version {described.get('version')}")
        return {"flavor": "python_function", **described, "name": name}

    def _describe(self, aws, function: str, alias: str) -> dict:
        from mpack.infra.aws.function_state import read_state
        from mpack.infra.aws.served import published_models

        state = read_state(aws, function, alias)
        name = function if alias == DEFAULT_ALIAS else f"{function}:{alias}"
        if not state.exists:
            return {"name": name, "region": aws.region, "function_arn": None}
        served = published_models(state.descriptions, state.versions)
        serving = state.alias
        described = {"name": name, "function": function, "function_arn": state.arn, "region": aws.region, "alias": alias, "version": serving.version if serving else None}
        described.update(_model_fields("", served.get(serving.version) if serving else None))
        canary = next(iter(serving.weights.items()), None) if serving else None
        if canary:
            described.update({"canary_version": canary[0], "canary_percent": round(canary[1] * 100, 2), **_model_fields("canary_", served.get(canary[0]))})
        described["function_url_auth"] = state.url_auth
        return described

    def _aws(self, region: str | None):
        from mpack.infra.aws.session import Aws
        from mpack.packager.deploy.aws_settings import DeploySettings, region_of

        return Aws(region_of(DeploySettings(None, "", region=region or self.region)))


def _model_fields(prefix: str, served) -> dict:
    if served is None:
        return {f"{prefix}model_name": None, f"{prefix}model_version": None}
    return {f"{prefix}model_name": served.name, f"{prefix}model_version": served.version, f"{prefix}model_source": served.source}


def _served(outcome, manifest: dict) -> dict:
    state = outcome.state
    weights = state.get("alias_weights") or {}
    canary = next(iter(weights.items()), None)
    result = {"function": outcome.function, "function_arn": state.get("function_arn"), "alias": outcome.alias, "version": state.get("alias_version")}
    if canary:
        result.update({"canary_version": canary[0], "canary_percent": round(canary[1] * 100, 2)})
    model = manifest.get("model", {})
    version = model.get("version")
    result.update({"model_name": model.get("name"), "model_version": None if version is None else str(version), "changed": bool(outcome.steps) and outcome.applied})
    return result


def _exists(aws, function: str) -> bool:
    from mpack.infra.aws.session import aws_call

    client = aws.lambda_
    with aws_call(f"read function {function}"):
        try:
            client.get_function(FunctionName=function)
        except client.exceptions.ResourceNotFoundException:
            return False
    return True


def _build_settings(values: dict) -> BuildSettings:
    return BuildSettings(
        values["target"], values["env_manager"], values["allow_pickle"], values["trust_type"], values["python"], values["arch"], values["runtime"], values["tolerance"], values["cache_dir"]
    )


def _deploy_settings(values: dict, artifact, function: str, alias: str, region: str):
    from pathlib import Path

    from mpack.packager.deploy.aws_settings import DeploySettings

    return DeploySettings(
        bundle=Path(artifact),
        function=function,
        alias=alias,
        canary=values["canary"],
        memory_mb=values["memory"],
        timeout_s=values["timeout"],
        role=values["role"],
        environment=values["env"],
        reserved=values["reserved"],
        function_url=values["function_url"],
        bucket=values["bucket"],
        region=region,
        smoke_test=values["smoke_test"],
        cache_dir=values["cache_dir"],
        provisioned=values["provisioned"],
        repository=values["repository"],
        arch=values["arch"],
        snapstart=values["snapstart"],
    )


def _split(name) -> tuple[str, str | None]:
    """``NAME`` or ``NAME:ALIAS`` (Lambda's own qualified-name syntax), each checked."""
    if not name:
        raise refuse(TARGET, "a deployment name is needed (the Lambda function's, or FUNCTION:ALIAS)")
    function, colon, alias = str(name).partition(":")
    if not FUNCTION_NAME.fullmatch(function):
        raise refuse(TARGET, f"deployment name {name!r}: {function!r} is not a Lambda function name (1-64 letters, digits, hyphens or underscores)")
    if colon and not ALIAS_NAME.fullmatch(alias):
        raise refuse(TARGET, f"deployment name {name!r}: {alias!r} is not a Lambda alias name (letters, digits, hyphens or underscores, not only digits)")
    return function, alias or None


def _function_and_alias(name, configured: str) -> tuple[str, str]:
    function, alias = _split(name)
    if alias and configured not in (DEFAULT_ALIAS, alias):
        raise refuse(TARGET, f"deployment {name} names alias {alias} but -C alias={configured}; give one of them")
    alias = alias or configured
    if not ALIAS_NAME.fullmatch(alias):
        raise refuse(TARGET, f"-C alias={alias} is not a Lambda alias name (letters, digits, hyphens or underscores, not only digits)")
    return function, alias


def _scoring_request(inputs) -> dict:
    """An MLflow scoring request from what MLflow's predict passes: a DataFrame (the CLI reads --input-path
    with pandas), a request dict as it is, rows, or an array."""
    if hasattr(inputs, "to_json") and hasattr(inputs, "columns"):
        return {"dataframe_split": json.loads(inputs.to_json(orient="split", index=False, date_format="iso"))}
    if isinstance(inputs, dict):
        return inputs
    if hasattr(inputs, "tolist"):
        return {"inputs": inputs.tolist()}
    if isinstance(inputs, list):
        return {"dataframe_records": inputs} if inputs and all(isinstance(row, dict) for row in inputs) else {"inputs": inputs}
    raise refuse(TARGET, f"cannot send {type(inputs).__name__} to a deployment: give a pandas DataFrame, an MLflow scoring request (dict), rows or an array")


def _region_of_uri(target_uri: str) -> str | None:
    """``mpack-lambda:/us-east-1`` -> us-east-1; ``mpack-lambda`` -> None (then $AWS_REGION)."""
    _, _, rest = str(target_uri).partition(":")
    region = rest.strip("/")
    if region and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        raise refuse(TARGET, f"target {target_uri}: {region!r} is not an AWS region (e.g. mpack-lambda:/us-east-1)")
    return region or None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_local(name, model_uri, flavor=None, config=None):
    """Build the model as a Lambda zip and serve it with ``mpack serve`` (the Invoke API answers the alias)."""
    from mpack.packager.mlflow_plugin.local_run import serve_locally

    return serve_locally(TARGET, name, model_uri, flavor, config, LOCAL_KEYS, lambda values: _build_settings({**values, "target": "lambda"}))


def target_help():
    return f"""{TARGET}: MLflow models on AWS Lambda, built and deployed by mpack (pip install mpack-serverless).

Target URI: {TARGET} (region from $AWS_REGION) or {TARGET}:/REGION, e.g. {TARGET}:/eu-west-1.
Credentials: boto3's usual chain ($AWS_PROFILE, $AWS_ACCESS_KEY_ID/..., OIDC in CI).

A deployment is a Lambda function and its alias: NAME serves through alias `live` (or -C alias=...);
NAME:ALIAS names another alias (get, predict, delete).
  create   build the model (in its own environment), create the function, publish a version, smoke-test it,
           point the alias at it. Refused if the function exists.
  update   -m URI: the same for a new model, on the existing function; with -C canary=PCT the alias sends
           PCT% to the new version and keeps the rest on the serving one.
           Without -m: the canary takes all the traffic (promote).
  delete   the function with its versions, aliases and the role mpack made (NAME:ALIAS: only that alias);
           a deployment that is not there is not an error.
  get/list what each alias serves, read back from AWS: Lambda version, registered model name and version.
  predict  invokes the alias with the MLflow scoring request (dataframe_split for a DataFrame).
  run-local  builds the zip and runs `mpack serve` on it (-C port=..., host, alias); Ctrl-C stops it.

Config (-C key=value), create and update:
{keys_help(DEPLOY_KEYS)}
delete: region. run-local: port, host, alias and the build keys.

Examples:
  mlflow deployments create -t {TARGET}:/us-east-1 --name fraud -m models:/fraud@champion
  mlflow deployments update -t {TARGET}:/us-east-1 --name fraud -m models:/fraud/4 -C canary=10
  mlflow deployments update -t {TARGET}:/us-east-1 --name fraud
  mlflow deployments predict -t {TARGET}:/us-east-1 --name fraud --input-path rows.json
"""
