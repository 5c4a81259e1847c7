"""The plugin's edges that need no AWS: `-C` values typed and checked, deployment names and target URIs,
the scoring request made from what MLflow's predict passes, and MLflow's plugin rules for the module."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from mlflow.deployments import BaseDeploymentClient
from mlflow.exceptions import MlflowException
from mpack.infra.errors import MpackError
from mpack.packager.mlflow_plugin import lambda_target
from mpack.packager.mlflow_plugin.config_keys import parse
from mpack.packager.mlflow_plugin.errors import as_mlflow_errors


def test_values_arrive_as_strings_and_are_typed():
    values = parse({"memory": "512", "canary": "10", "snapstart": "true", "env": "A=1, B=2", "cache-dir": "~/c", "smoke-test": "local"}, lambda_target.DEPLOY_KEYS, "t")
    assert (values["memory"], values["canary"], values["snapstart"], values["env"], values["smoke_test"]) == (512, 10.0, True, ("A=1", "B=2"), "local")
    assert values["cache_dir"] == Path("~/c").expanduser() and values["alias"] == "live" and values["timeout"] == 30 and values["role"] is None
    assert parse({"memory": 256, "allow-pickle": False}, lambda_target.DEPLOY_KEYS, "t")["memory"] == 256  # Python values from get_deploy_client


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"memmory": "512"}, "unknown config key(s) memmory; valid keys: region, alias, target"),
        ({"memory": "1.5"}, "-C memory=1.5: not a whole number (expected int)"),
        ({"canary": "ten"}, "-C canary=ten"),
        ({"snapstart": "maybe"}, "not true or false"),
        ({"smoke-test": "cloud"}, "not one of aws, local, none"),
        ({"region": " "}, "empty"),
    ],
)
def test_bad_values_are_refused_naming_the_key(config, message):
    with pytest.raises(MlflowException) as refused:
        parse(config, lambda_target.DEPLOY_KEYS, "mpack-lambda")
    assert message in refused.value.message


def test_names_and_target_uris():
    assert lambda_target._split("fraud") == ("fraud", None)
    assert lambda_target._split("fraud:prod") == ("fraud", "prod")
    assert lambda_target._function_and_alias("fraud", "canary-a") == ("fraud", "canary-a")
    for bad in ("fraud/1", "fraud:12", "", "x" * 65):
        with pytest.raises(MlflowException):
            lambda_target._split(bad)
    with pytest.raises(MlflowException, match="give one of them"):
        lambda_target._function_and_alias("fraud:prod", "other")
    assert lambda_target._region_of_uri("mpack-lambda:/eu-west-1") == "eu-west-1"
    assert lambda_target._region_of_uri("mpack-lambda") is None
    with pytest.raises(MlflowException, match="not an AWS region"):
        lambda_target._region_of_uri("mpack-lambda:/mars")


def test_scoring_requests_from_what_predict_receives():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    assert lambda_target._scoring_request(frame) == {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, "x"], [2.0, "y"]]}}
    assert lambda_target._scoring_request({"instances": [[1]]}) == {"instances": [[1]]}
    assert lambda_target._scoring_request([{"a": 1}]) == {"dataframe_records": [{"a": 1}]}
    with pytest.raises(MlflowException, match="cannot send"):
        lambda_target._scoring_request(object())


def test_mpack_errors_become_mlflow_errors_with_their_hint():
    with pytest.raises(MlflowException) as raised, as_mlflow_errors("mpack-lambda"):
        raise MpackError("no AWS region", "pass --region, or set AWS_REGION")
    assert raised.value.message == "mpack-lambda: no AWS region\nhint: pass --region, or set AWS_REGION"


def test_the_module_is_what_mlflow_loads():
    """MLflow's plugin manager wants run_local, target_help and exactly one BaseDeploymentClient subclass."""
    clients = [obj for _, obj in inspect.getmembers(lambda_target, inspect.isclass) if issubclass(obj, BaseDeploymentClient) and obj is not BaseDeploymentClient]
    assert clients == [lambda_target.MpackLambdaDeploymentClient]
    assert callable(lambda_target.run_local) and "mpack-lambda:/REGION" in lambda_target.target_help()
    from mlflow.deployments import get_deploy_client

    assert isinstance(get_deploy_client("mpack-lambda:/us-east-1"), lambda_target.MpackLambdaDeploymentClient)
