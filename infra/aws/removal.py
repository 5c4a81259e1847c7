"""Removing what a deploy made: the function (its versions, aliases, URL and concurrency settings go with
it) and the execution role mpack created for it. Idempotent: what is already gone is not an error, so a
retried or repeated delete converges. A role mpack did not create, and the S3 bucket of large zips (it may
hold other functions' code), are left alone."""

from __future__ import annotations

from dataclasses import dataclass

from mpack.infra.aws.planner import role_name
from mpack.infra.aws.session import Aws, aws_call


@dataclass(frozen=True)
class Removed:
    function: bool  # False: there was no such function
    role: str | None  # the role removed with it, if mpack had made one


def remove_function(aws: Aws, name: str) -> Removed:
    client = aws.lambda_
    with aws_call(f"delete function {name}"):
        try:
            role_arn = client.get_function(FunctionName=name)["Configuration"].get("Role") or ""
        except client.exceptions.ResourceNotFoundException:
            return Removed(False, None)
        try:
            client.delete_function(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            return Removed(False, None)
    own_role = role_name(name)
    if role_arn.rsplit("/", 1)[-1] != own_role:
        return Removed(True, None)
    return Removed(True, own_role if _remove_role(aws, own_role) else None)


def remove_alias(aws: Aws, name: str, alias: str) -> bool:
    """One alias of a function (the versions stay); False when there was none."""
    client = aws.lambda_
    with aws_call(f"delete alias {alias} of {name}"):
        try:
            client.delete_alias(FunctionName=name, Name=alias)
        except client.exceptions.ResourceNotFoundException:
            return False
    return True


def _remove_role(aws: Aws, role: str) -> bool:
    iam = aws.iam
    with aws_call(f"delete execution role {role}"):
        try:
            if "mpack" not in (iam.get_role(RoleName=role)["Role"].get("Description") or ""):
                return False  # a role of that name that mpack did not create
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=policy)
            iam.delete_role(RoleName=role)
        except iam.exceptions.NoSuchEntityException:
            return False
    return True
