"""Lambda images in ECR: where a repository's registry is, the content tag, and the push (with a
token from GetAuthorizationToken) that gives back the digest the function is pinned to.

``MPACK_ECR_REGISTRY`` replaces the registry host ECR names (the tests point it at a registry on
127.0.0.1, since an AWS emulator has no registry behind its ECR API)."""

from __future__ import annotations

import base64
import os

from mpack.infra.aws.function_state import DesiredImage
from mpack.infra.aws.session import Aws, aws_error
from mpack.infra.errors import MpackError


def ecr_registry(aws: Aws) -> tuple[str, dict | None]:
    """(registry host, docker auth config)."""
    try:
        data = aws.client("ecr").get_authorization_token()["authorizationData"][0]
    except Exception as exc:  # noqa: BLE001
        raise aws_error(exc, "get an ECR login token") from None
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    override = os.environ.get("MPACK_ECR_REGISTRY")
    if override:
        return override, None
    return data["proxyEndpoint"].removeprefix("https://"), {"username": username, "password": password}


def desired_image(client, aws: Aws, local: str, repository: str) -> DesiredImage:
    from mpack.infra.local.local_bundle import lambda_image

    image = lambda_image(client, local)
    labels = image.attrs["Config"].get("Labels") or {}
    registry, _ = ecr_registry(aws)
    tag = f"{labels.get('org.opencontainers.image.version', 'model')}-{image.id.removeprefix('sha256:')[:12]}"
    prefix = f"{registry}/{repository}@"
    pushed = next((digest for digest in image.attrs.get("RepoDigests") or () if digest.startswith(prefix)), None)
    return DesiredImage(local, repository, registry, tag, pushed)


def push_to_repository(aws: Aws, desired: DesiredImage) -> str:
    from mpack.infra.docker_engine import connect

    client = connect()
    registry, auth = ecr_registry(aws)
    target = f"{registry}/{desired.repository}"
    client.images.get(desired.local).tag(target, desired.tag)
    digest = None
    try:
        for event in client.images.push(target, tag=desired.tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise MpackError(f"pushing {target}:{desired.tag} failed: {event['error'].strip()[:300]}", "check the repository policy and the credentials' ecr:* permissions")
            digest = (event.get("aux") or {}).get("Digest", digest)
    except MpackError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MpackError(f"pushing {target}:{desired.tag} failed: {exc}", "check the network to the registry and the credentials") from None
    if not digest:
        raise MpackError(f"the registry reported no digest for {target}:{desired.tag}", "push again; check the registry")
    return f"{target}@{digest}"
