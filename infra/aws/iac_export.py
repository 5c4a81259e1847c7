"""``mpack export``: the deploy as infrastructure as code, for teams that deploy with their own tools.

``sam``: an AWS::Serverless::Function with AutoPublishAlias (a version per code change) and, for
canaries, a DeploymentPreference (CodeDeploy shifts traffic as ``--canary`` does). ``cloudformation``:
plain resources (role, function, version, alias with weighted routing when asked, function URL).
Intrinsic functions are written in their long form ({"Ref": ...}), so any YAML parser reads it.
"""

from __future__ import annotations

from mpack.infra.aws.function_state import DesiredFunction

FORMATS = ("sam", "cloudformation")
SAM_CANARIES = {10: "Canary10Percent5Minutes", 30: "Canary10Percent30Minutes"}


def export_template(desired: DesiredFunction, fmt: str, code_uri: str) -> dict:
    return _sam(desired, code_uri) if fmt == "sam" else _cloudformation(desired)


def _common(desired: DesiredFunction) -> dict:
    properties = {
        "FunctionName": desired.name,
        "Handler": desired.handler,
        "Runtime": desired.runtime,
        "Architectures": [desired.arch],
        "MemorySize": desired.memory_mb,
        "Timeout": desired.timeout_s,
        "Description": f"mpack: {desired.model}",
    }
    if desired.environment:
        properties["Environment"] = {"Variables": dict(desired.environment)}
    if desired.reserved is not None:
        properties["ReservedConcurrentExecutions"] = desired.reserved
    if desired.snapstart:
        properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    return properties


def _sam(desired: DesiredFunction, code_uri: str) -> dict:
    properties = {**_common(desired), "CodeUri": code_uri, "AutoPublishAlias": desired.alias, "Policies": ["AWSLambdaBasicExecutionRole"]}
    if desired.role_arn:
        properties.pop("Policies")
        properties["Role"] = desired.role_arn
    if desired.canary_percent is not None:
        properties["DeploymentPreference"] = {"Type": SAM_CANARIES.get(int(desired.canary_percent), "Canary10Percent5Minutes")}
    if desired.function_url != "none":
        properties["FunctionUrlConfig"] = {"AuthType": "NONE" if desired.function_url == "public" else "AWS_IAM"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"mpack: {desired.model}",
        "Resources": {"Function": {"Type": "AWS::Serverless::Function", "Properties": properties}},
        "Outputs": {"FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}}, "AliasArn": {"Value": {"Ref": "FunctionAliaslive" if desired.alias == "live" else f"FunctionAlias{desired.alias}"}}},
    }


def _cloudformation(desired: DesiredFunction) -> dict:
    resources: dict = {}
    role = desired.role_arn
    if role is None:
        resources["ExecutionRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
            },
        }
        role = {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    resources["Function"] = {"Type": "AWS::Lambda::Function", "Properties": {**_common(desired), "Role": role, "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}}}
    resources["Version"] = {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Function"}, "Description": f"mpack: {desired.model}"}}
    alias = {"FunctionName": {"Ref": "Function"}, "Name": desired.alias, "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]}}
    if desired.canary_percent is not None:
        alias["FunctionVersion"] = {"Ref": "ServingVersion"}
        alias["RoutingConfig"] = {"AdditionalVersionWeights": [{"FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]}, "FunctionWeight": round(desired.canary_percent / 100, 4)}]}
    resources["Alias"] = {"Type": "AWS::Lambda::Alias", "Properties": alias}
    if desired.function_url != "none":
        resources["Url"] = {"Type": "AWS::Lambda::Url", "Properties": {"TargetFunctionArn": {"Ref": "Alias"}, "AuthType": "NONE" if desired.function_url == "public" else "AWS_IAM"}}
    parameters = {"CodeBucket": {"Type": "String", "Description": "S3 bucket holding the bundle zip"}, "CodeKey": {"Type": "String", "Description": "S3 key of the bundle zip"}}
    if desired.canary_percent is not None:
        parameters["ServingVersion"] = {"Type": "String", "Description": "the version that keeps the rest of the traffic"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"mpack: {desired.model}",
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": {"FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}}, "AliasArn": {"Value": {"Ref": "Alias"}}},
    }
