"""An AWS deploy's settings, checked and turned into the deployer's plain data (the bundle's manifest read,
Lambda's limits applied) and the smoke test it asks for: shared by ``mpack deploy``, the MLflow plugin and
``mpack sync``, so that every way of deploying checks the same things."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mpack.handlers.errors import ModelLoadError
from mpack.handlers.manifest import MANIFEST_NAME, Manifest
from mpack.infra.errors import MpackError

UNZIPPED_LIMIT = 250 * 1024 * 1024
KEEP_URL = "keep"
FUNCTION_URLS = ("none", "iam", "public")


@dataclass(frozen=True)
class DeploySettings:
    bundle: Path | None
    function: str
    alias: str = "live"
    canary: float | None = None
    memory_mb: int = 1024
    timeout_s: int = 30
    role: str | None = None
    environment: tuple[str, ...] = ()
    reserved: int | None = None
    function_url: str = KEEP_URL  # none | iam | public | keep (not asked: leave the URL as it is)
    bucket: str | None = None
    region: str | None = None
    smoke_test: str = "aws"
    cache_dir: Path | None = None
    provisioned: int | None = None
    repository: str | None = None  # image deploys: the ECR repository [default: the function name]
    arch: str | None = None  # must match the bundle's
    snapstart: bool | None = None  # --snapstart / --no-snapstart; None: leave it as it is


def region_of(settings: DeploySettings) -> str:
    region = settings.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise MpackError("no AWS region", "pass --region, or set AWS_REGION")
    return region


def desired_function(settings: DeploySettings, aws=None):
    """What to deploy. ``bundle`` is a zip, or (not a file) a local lambda-image tag, which needs ``aws``
    to know its repository's registry."""
    from mpack.infra.aws.function_state import DesiredFunction, code_sha256
    from mpack.infra.aws.served import model_record
    from mpack.infra.local.function_config import FunctionConfig, parse_environment

    if settings.bundle is None:
        return DesiredFunction(settings.function, Path(), "", "", "", "x86_64", settings.memory_mb, settings.timeout_s, {}, settings.alias, None, None, None, "none", None, {}, "")
    image = None
    if _is_image(settings.bundle):
        manifest, image = _image(settings, aws)
    else:
        manifest = _zip_manifest(settings.bundle)
    if settings.canary is not None and not 0 < settings.canary < 100:
        raise MpackError(f"--canary {settings.canary:g} must be a percentage between 0 and 100", "e.g. --canary 10 sends 10% of the alias's traffic to the new version")
    if settings.function_url not in (*FUNCTION_URLS, KEEP_URL):
        raise MpackError(f"--function-url {settings.function_url} is not one of {', '.join(FUNCTION_URLS)}", "iam (signed requests) unless you mean public")
    if settings.arch and settings.arch != manifest["runtime"]["arch"]:
        raise MpackError(f"--arch {settings.arch} does not match the bundle, built for {manifest['runtime']['arch']}", f"rebuild with --arch {settings.arch}, or drop --arch")
    if settings.snapstart:
        _check_snapstart(settings, manifest, image)
    environment = parse_environment(list(settings.environment))
    FunctionConfig(name=settings.function, handler=manifest["handler"], memory_mb=settings.memory_mb, timeout_s=settings.timeout_s, environment=environment)  # Lambda's limits
    model = manifest["model"]
    return DesiredFunction(
        name=settings.function,
        zip_path=settings.bundle,
        code_sha256="" if image else code_sha256(settings.bundle),
        handler=manifest["handler"],
        runtime=f"python{manifest['runtime']['python']}",
        arch=manifest["runtime"]["arch"],
        memory_mb=settings.memory_mb,
        timeout_s=int(settings.timeout_s),
        environment=dict(environment),
        alias=settings.alias,
        canary_percent=settings.canary,
        role_arn=settings.role,
        reserved=settings.reserved,
        function_url=settings.function_url,
        bucket=settings.bucket,
        input_example=manifest["input_example"],
        model=model_record(str(model["name"]), str(model["version"]), str(model["source"])),
        provisioned=settings.provisioned,
        image=image,
        snapstart=settings.snapstart,
    )


SNAPSTART_PYTHON = (3, 12)


def _check_snapstart(settings: DeploySettings, manifest: dict, image) -> None:
    """Lambda's SnapStart conditions that the bundle and the flags decide (the function's own EFS
    and ephemeral storage are checked against its state when planning)."""
    python = manifest["runtime"]["python"]
    if tuple(int(part) for part in python.split(".")) < SNAPSTART_PYTHON:
        raise MpackError(f"SnapStart for Python needs the 3.12 runtime or newer; this bundle targets Python {python}", "rebuild with --python 3.12 (or 3.13), or deploy without --snapstart")
    if image is not None:
        raise MpackError("SnapStart does not apply to container images on Lambda", "deploy a zip (--target lambda), or drop --snapstart")
    if settings.provisioned:
        raise MpackError("SnapStart and provisioned concurrency cannot be combined on Lambda", "drop --provisioned or --snapstart")


def _is_image(bundle: Path) -> bool:
    return not bundle.exists() and not str(bundle).endswith(".zip")


def _image(settings: DeploySettings, aws):
    from mpack.infra.aws.images import desired_image
    from mpack.infra.docker_engine import connect
    from mpack.infra.local.local_bundle import open_image

    client = connect()
    reference = str(settings.bundle)
    local = open_image(reference, client)
    return local.manifest, desired_image(client, aws, reference, settings.repository or settings.function)


def smoke_tester(settings: DeploySettings, aws, desired):
    from mpack.infra.aws.smoke import SMOKE_MODES, aws_smoke, local_smoke, no_smoke
    from mpack.packager.bundle.dependencies import default_cache_dir

    if settings.smoke_test not in SMOKE_MODES:
        raise MpackError(f"--smoke-test {settings.smoke_test} is not one of {', '.join(SMOKE_MODES)}", "aws invokes the new version; local runs the bundle on mpack's local platform")
    if settings.smoke_test == "local":
        return local_smoke(desired, settings.cache_dir or default_cache_dir())
    return aws_smoke(aws, desired) if settings.smoke_test == "aws" else no_smoke


def _zip_manifest(bundle: Path) -> dict:
    if not bundle.is_file():
        raise MpackError(f"{bundle} is not a bundle zip", "deploy a zip from mpack build --target lambda, or a local image from --target lambda-image")
    try:
        with zipfile.ZipFile(bundle) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
            manifest = Manifest.from_bytes(archive.read(MANIFEST_NAME), f"{bundle}:{MANIFEST_NAME}").served()
    except (zipfile.BadZipFile, KeyError, ModelLoadError) as exc:
        raise MpackError(f"{bundle} is not a bundle built by mpack: {exc}", "build one with mpack build --target lambda") from None
    if unzipped > UNZIPPED_LIMIT:
        raise MpackError(f"{bundle} is {unzipped / 2**20:.0f} MB unzipped, over Lambda's 250 MB", "build an image: --target lambda-image")
    return manifest
