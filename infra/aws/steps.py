"""The typed steps of an AWS deploy plan (``mpack.infra.plan``'s contract): each says what it will do
(``describe``, for ``--plan``) and does it (``apply``); the same list is shown or applied, never
recomputed in between. Steps let AWS's errors rise: the executor's guard translates them once,
naming the step that failed.

Steps share one ``DeployContext``: what earlier steps produced (the role, the code location, the
published version) and how to smoke-test a version. The plan itself is never written to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from mpack.infra.aws.function_state import DesiredFunction, FunctionState
from mpack.infra.aws.session import Aws
from mpack.infra.errors import MpackError

TRUST_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
ROLE_PROPAGATION_TRIES = 10
UPDATE_WAIT_S = 300


@dataclass
class DeployContext:
    aws: Aws
    desired: DesiredFunction
    state: FunctionState
    smoke: Callable[[str], str]  # version -> what was checked; raises MpackError on failure
    role_arn: str | None = None
    code: dict = field(default_factory=dict)  # ZipFile bytes, S3Bucket/S3Key, or ImageUri
    version: str | None = None
    revision_spent: bool = False  # the planned RevisionId guards only the first update


@dataclass(frozen=True)
class CreateRole:
    name: str

    def describe(self) -> str:
        return f"create execution role {self.name} (trust lambda.amazonaws.com; CloudWatch Logs only)"

    def apply(self, ctx: DeployContext) -> None:
        iam = ctx.aws.iam
        try:
            ctx.role_arn = iam.get_role(RoleName=self.name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            ctx.role_arn = iam.create_role(RoleName=self.name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY), Description="mpack: Lambda execution role")["Role"]["Arn"]
        iam.put_role_policy(RoleName=self.name, PolicyName="mpack-logs", PolicyDocument=json.dumps(_logs_policy(ctx)))


def _logs_policy(ctx: DeployContext) -> dict:
    """Writing its own log group, nothing else (narrower than AWSLambdaBasicExecutionRole's any-group)."""
    group = f"arn:aws:logs:{ctx.aws.region}:{ctx.aws.account}:log-group:/aws/lambda/{ctx.desired.name}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": group},
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{group}:*"},
        ],
    }


@dataclass(frozen=True)
class UploadToS3:
    bucket: str
    key: str

    def describe(self) -> str:
        return f"upload the code to s3://{self.bucket}/{self.key} (over 50 MB: no direct upload; bucket private and encrypted)"

    def apply(self, ctx: DeployContext) -> None:
        s3 = ctx.aws.s3
        try:
            s3.head_bucket(Bucket=self.bucket)
        except s3.exceptions.ClientError:
            extra = {} if ctx.aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.aws.region}}
            s3.create_bucket(Bucket=self.bucket, **extra)
            s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration={k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")})
            s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        s3.upload_file(str(ctx.desired.zip_path), self.bucket, self.key)
        ctx.code = {"S3Bucket": self.bucket, "S3Key": self.key}


def _code(ctx: DeployContext) -> dict:
    if ctx.code:
        return ctx.code
    if ctx.desired.image:
        return {"ImageUri": ctx.desired.image.pushed_uri}
    return {"ZipFile": ctx.desired.zip_path.read_bytes()}


@dataclass(frozen=True)
class CreateFunction:
    def describe(self) -> str:
        return "create the function"

    def apply(self, ctx: DeployContext) -> None:
        desired = ctx.desired
        role = ctx.role_arn or desired.role_arn or ctx.state.role_arn
        for attempt in range(ROLE_PROPAGATION_TRIES):
            try:
                package = {"PackageType": "Image"} if desired.image else {}
                ctx.aws.lambda_.create_function(
                    FunctionName=desired.name,
                    Role=role,
                    Code=_code(ctx),
                    Architectures=[desired.arch],
                    Publish=False,
                    Description=f"mpack: {desired.model}",
                    **package,
                    **desired.configuration(),
                )
                return
            except ctx.aws.lambda_.exceptions.InvalidParameterValueException as exc:
                if "cannot be assumed" not in str(exc) or attempt == ROLE_PROPAGATION_TRIES - 1:
                    raise
                time.sleep(min(2**attempt, 10))  # a new IAM role takes seconds to reach Lambda


def _revision(ctx: DeployContext) -> dict:
    """The function's RevisionId as read when planning, once: a deploy racing another one fails
    with PreconditionFailed instead of overwriting it. Later updates in the same plan follow ours."""
    if ctx.state.revision_id is None or ctx.revision_spent:
        return {}
    ctx.revision_spent = True
    return {"RevisionId": ctx.state.revision_id}


@dataclass(frozen=True)
class UpdateCode:
    def describe(self) -> str:
        return "update the function's code"

    def apply(self, ctx: DeployContext) -> None:
        ctx.aws.lambda_.update_function_code(FunctionName=ctx.desired.name, **_code(ctx), **_revision(ctx))


@dataclass(frozen=True)
class UpdateConfiguration:
    changed: tuple[str, ...]

    def describe(self) -> str:
        return f"update the configuration ({', '.join(self.changed)})"

    def apply(self, ctx: DeployContext) -> None:
        ctx.aws.lambda_.update_function_configuration(FunctionName=ctx.desired.name, Role=ctx.role_arn or ctx.desired.role_arn or ctx.state.role_arn, **ctx.desired.configuration(), **_revision(ctx))


@dataclass(frozen=True)
class WaitUntilUpdated:
    def describe(self) -> str:
        return "wait until the update has finished (LastUpdateStatus)"

    def apply(self, ctx: DeployContext) -> None:
        name = ctx.desired.name

        def settled(config: dict) -> bool:
            status = config.get("LastUpdateStatus", "Successful")
            if status == "Failed":
                raise MpackError(f"the update of {name} failed: {config.get('LastUpdateStatusReason', 'no reason given')}", "fix what the reason names; the alias was not moved")
            return config.get("State", "Active") != "Pending" and status == "Successful"

        _poll(lambda: ctx.aws.lambda_.get_function_configuration(FunctionName=name), settled, f"the update of {name}")


def _poll(read, done, what: str) -> dict:
    """``read()`` every second until ``done(config)`` (which raises on a failure), within UPDATE_WAIT_S."""
    deadline = time.monotonic() + UPDATE_WAIT_S
    while True:
        config = read()
        if done(config):
            return config
        if time.monotonic() > deadline:
            raise MpackError(f"{what} did not finish in {UPDATE_WAIT_S} s", "check the function in the console; the alias was not moved")
        time.sleep(1)


@dataclass(frozen=True)
class PublishVersion:
    def describe(self) -> str:
        return "publish a version"

    def apply(self, ctx: DeployContext) -> None:
        guard = {} if ctx.desired.image else {"CodeSha256": ctx.desired.code_sha256}  # publish exactly what was uploaded
        published = ctx.aws.lambda_.publish_version(FunctionName=ctx.desired.name, Description=f"mpack: {ctx.desired.model}", **guard)
        ctx.version = published["Version"]


@dataclass(frozen=True)
class WaitForSnapshot:
    """SnapStart: a published version serves only once Lambda has initialized it and taken its
    snapshot (State Pending -> Active); the smoke test and the alias wait for that."""

    def describe(self) -> str:
        return "wait for the new version's SnapStart snapshot (State Active)"

    def apply(self, ctx: DeployContext) -> str:
        version = ctx.version

        def active(config: dict) -> bool:
            if config.get("State") == "Failed":
                raise MpackError(
                    f"Lambda could not take the SnapStart snapshot of version {version}: {config.get('StateReason', 'no reason given')}",
                    "the init or a before-snapshot hook failed: run the bundle with `mpack invoke --snapstart`; the alias was not moved",
                )
            return config.get("State", "Active") == "Active"

        config = _poll(lambda: ctx.aws.lambda_.get_function_configuration(FunctionName=ctx.desired.name, Qualifier=version), active, f"the SnapStart snapshot of version {version}")
        return f"SnapStart snapshot of version {version}: {(config.get('SnapStart') or {}).get('OptimizationStatus', 'reported by Lambda')}"


@dataclass(frozen=True)
class SmokeTest:
    version: str | None  # None: the version published by this plan

    def describe(self) -> str:
        return f"smoke-test version {self.version or '(new)'} with the model's input example"

    def apply(self, ctx: DeployContext) -> str:
        version = self.version or ctx.version
        ctx.version = version
        return f"smoke test of version {version}: {ctx.smoke(version)}"


@dataclass(frozen=True)
class MoveAlias:
    alias: str
    version: str | None  # None: the version this plan published
    primary: str | None  # canary: the version keeping the rest of the traffic
    weight: float | None  # canary: share of traffic for the new version (0-1)
    revision_id: str | None
    previous: str | None  # recorded in the alias description, for rollback
    moves_traffic: ClassVar[bool] = True

    def describe(self) -> str:
        target = self.version or "(new)"
        if self.weight is not None:
            return f"route {self.weight:.0%} of alias {self.alias} to version {target}, the rest stays on version {self.primary} (canary)"
        return f"point alias {self.alias} at version {target}" + (f" (was {self.previous})" if self.previous else "")

    def apply(self, ctx: DeployContext) -> None:
        version = self.version or ctx.version
        client = ctx.aws.lambda_
        description = f"mpack: {ctx.desired.model}" + (f"; previous={self.previous}" if self.previous else "") + (f"; since={int(time.time())}" if self.weight is not None else "")
        if self.weight is not None:
            settings = {"FunctionVersion": self.primary, "RoutingConfig": {"AdditionalVersionWeights": {version: self.weight}}}
        else:
            settings = {"FunctionVersion": version, "RoutingConfig": {"AdditionalVersionWeights": {}}}
        if self.revision_id is None and not _alias_exists(client, ctx.desired.name, self.alias):
            client.create_alias(FunctionName=ctx.desired.name, Name=self.alias, Description=description, **settings)
        else:
            extra = {"RevisionId": self.revision_id} if self.revision_id else {}
            client.update_alias(FunctionName=ctx.desired.name, Name=self.alias, Description=description, **settings, **extra)


def _alias_exists(client, name: str, alias: str) -> bool:
    try:
        client.get_alias(FunctionName=name, Name=alias)
        return True
    except client.exceptions.ResourceNotFoundException:
        return False


@dataclass(frozen=True)
class SetReservedConcurrency:
    count: int

    def describe(self) -> str:
        return f"reserve {self.count} concurrent executions"

    def apply(self, ctx: DeployContext) -> None:
        ctx.aws.lambda_.put_function_concurrency(FunctionName=ctx.desired.name, ReservedConcurrentExecutions=self.count)


@dataclass(frozen=True)
class ConfigureFunctionUrl:
    alias: str
    auth: str  # AWS_IAM | NONE
    exists: bool

    def describe(self) -> str:
        warning = " — PUBLIC: anyone on the internet can invoke it" if self.auth == "NONE" else ""
        return f"{'update' if self.exists else 'create'} the function URL on alias {self.alias} (auth {self.auth}){warning}"

    def apply(self, ctx: DeployContext) -> None:
        client, name = ctx.aws.lambda_, ctx.desired.name
        if self.exists:
            client.update_function_url_config(FunctionName=name, Qualifier=self.alias, AuthType=self.auth)
        else:
            client.create_function_url_config(FunctionName=name, Qualifier=self.alias, AuthType=self.auth)
        if self.auth == "NONE":
            client.add_permission(FunctionName=name, Qualifier=self.alias, StatementId=PUBLIC_URL_STATEMENT, Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
        else:
            _remove_public_permission(client, name, self.alias)


PUBLIC_URL_STATEMENT = "mpack-public-url"


def _remove_public_permission(client, name: str, alias: str) -> None:
    """Drop the public-invoke statement mpack added (absent already: nothing to do)."""
    try:
        client.remove_permission(FunctionName=name, Qualifier=alias, StatementId=PUBLIC_URL_STATEMENT)
    except client.exceptions.ResourceNotFoundException:
        pass


@dataclass(frozen=True)
class RemoveFunctionUrl:
    alias: str

    def describe(self) -> str:
        return f"remove the function URL on alias {self.alias} and mpack's public-invoke permission (--function-url none)"

    def apply(self, ctx: DeployContext) -> None:
        client, name = ctx.aws.lambda_, ctx.desired.name
        try:
            _remove_public_permission(client, name, self.alias)
            client.delete_function_url_config(FunctionName=name, Qualifier=self.alias)
        except client.exceptions.ResourceNotFoundException:
            pass


@dataclass(frozen=True)
class SetProvisionedConcurrency:
    alias: str
    count: int

    def describe(self) -> str:
        return f"keep {self.count} instances initialized on alias {self.alias} (provisioned concurrency)"

    def apply(self, ctx: DeployContext) -> None:
        ctx.aws.lambda_.put_provisioned_concurrency_config(FunctionName=ctx.desired.name, Qualifier=self.alias, ProvisionedConcurrentExecutions=self.count)


@dataclass(frozen=True)
class EnsureRepository:
    name: str

    def describe(self) -> str:
        return f"create ECR repository {self.name} if missing (scan on push, immutable tags)"

    def apply(self, ctx: DeployContext) -> None:
        ecr = ctx.aws.client("ecr")
        try:
            ecr.describe_repositories(repositoryNames=[self.name])
        except ecr.exceptions.RepositoryNotFoundException:
            ecr.create_repository(repositoryName=self.name, imageScanningConfiguration={"scanOnPush": True}, imageTagMutability="IMMUTABLE")


@dataclass(frozen=True)
class PushImage:
    def describe(self) -> str:
        return "push the image (the function will reference its digest, not a tag)"

    def apply(self, ctx: DeployContext) -> None:
        from mpack.infra.aws.images import push_to_repository

        ctx.code = {"ImageUri": push_to_repository(ctx.aws, ctx.desired.image)}
