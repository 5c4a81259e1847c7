"""boto3 clients for one region (endpoint from AWS_ENDPOINT_URL, credentials from the environment),
with throttling retried by botocore's adaptive mode, and AWS errors turned into MpackErrors that
say what was refused and what to do."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from mpack.infra.errors import MpackError

RETRIES = {"max_attempts": 8, "mode": "adaptive"}  # throttling and transient errors, with backoff


@dataclass
class Aws:
    region: str

    @cached_property
    def _session(self):
        import boto3

        return boto3.session.Session(region_name=self.region)

    def client(self, service: str, retries: dict | None = None):
        from botocore.config import Config

        return self._session.client(service, config=Config(retries=retries or RETRIES, read_timeout=120))

    @cached_property
    def lambda_(self):
        return self.client("lambda")

    @cached_property
    def iam(self):
        return self.client("iam")

    @cached_property
    def s3(self):
        return self.client("s3")

    @cached_property
    def account(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


@contextmanager
def aws_call(action: str):
    """Whatever AWS raises while doing ``action`` (botocore's ClientError and friends), as one MpackError."""
    try:
        yield
    except MpackError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors have no one base class
        raise aws_error(exc, action) from None


def aws_error(exc: Exception, action: str) -> MpackError:
    """A botocore error, named by what mpack was doing."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return MpackError(f"no AWS credentials to {action}", "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use OIDC in CI")
    if isinstance(exc, EndpointConnectionError):
        return MpackError(f"cannot reach AWS to {action}: {exc}", "check the network, --region and AWS_ENDPOINT_URL")
    if not isinstance(exc, ClientError):
        return MpackError(f"{action} failed: {exc}", "rerun with --debug")
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", str(exc))
    operation = getattr(exc, "operation_name", "the call")
    hints = {
        "AccessDenied": f"the credentials lack the permission for {operation}; grant it to the CI role",
        "AccessDeniedException": f"the credentials lack the permission for {operation}; grant it to the CI role",
        "ResourceConflictException": "the function is being changed by another update or deploy; wait and run again",
        "PreconditionFailedException": "the function or alias changed while deploying (another deploy?); run again to plan from the new state",
        "TooManyRequestsException": "AWS kept throttling after retries; run again later or raise the account's limits",
        "ThrottlingException": "AWS kept throttling after retries; run again later",
        "CodeStorageExceededException": "the account's Lambda code storage is full; delete old versions of other functions",
        "InvalidParameterValueException": "a setting was refused; check the values in the message",
        "ResourceNotFoundException": "check the function name and --region",
    }
    return MpackError(f"AWS refused to {action}: {code}: {message}", hints.get(code, "see the AWS error above"))
