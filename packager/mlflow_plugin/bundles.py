"""The bundle a deployment serves, built by mpack's one build flow. A registry URI is resolved once to
its version (``models:/fraud@champion`` is a moving pointer) and that exact version is built; its zip is
kept in the cache, keyed by the version's identity, the build settings and mpack's own code, so that an
``update`` or a ``run-local`` of a version already built here does not build it again."""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import import_module
from pathlib import Path

from mpack.handlers.errors import ModelLoadError
from mpack.handlers.manifest import MANIFEST_NAME, Manifest
from mpack.infra.errors import MpackError

REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")
BUNDLES = "mlflow-deployments"  # under the cache folder


@dataclass(frozen=True)
class BuildSettings:
    target: str  # lambda | lambda-image | azure
    env_manager: str = "uv"
    allow_pickle: bool = False
    trust_type: tuple[str, ...] = ()
    python: str | None = None
    arch: str | None = None
    runtime: str = "auto"
    tolerance: float | None = None
    cache_dir: Path | None = None
    auth: str | None = None  # azure
    instance_memory: int | None = None  # azure


@dataclass(frozen=True)
class Bundle:
    artifact: Path | str  # the zip, or (lambda-image) the local image tag
    manifest: dict
    model_uri: str  # what was built: a registry alias resolved to its version

    @property
    def flavor(self) -> str:
        return self.manifest.get("model", {}).get("flavor") or "python_function"


def build_bundle(model_uri: str, settings: BuildSettings, progress=None) -> Bundle:
    import mlflow
    from mpack.packager.bundle.dependencies import default_cache_dir
    from mpack.packager.pipeline import BuildOptions, build

    cache_dir = settings.cache_dir or default_cache_dir()
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    model_uri, identity = _resolved(model_uri, tracking, registry)
    options = BuildOptions(
        model=model_uri,
        target=settings.target,
        tracking_uri=tracking,
        registry_uri=registry,
        python=settings.python,
        arch=settings.arch,
        tolerance=settings.tolerance,
        trusted_types=settings.trust_type,
        allow_pickle=settings.allow_pickle,
        cache_dir=cache_dir,
        runtime=settings.runtime,
        env_manager=settings.env_manager,
        auth=settings.auth,
        instance_memory_mb=settings.instance_memory,
    )
    kept = _kept_path(cache_dir, identity, settings) if identity and settings.target != "lambda-image" else None
    if kept is not None and kept.is_file():
        return Bundle(kept, _zip_manifest(kept), model_uri)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        options = replace(options, output=kept)
    elif settings.target != "lambda-image":
        options = replace(options, output=cache_dir / BUNDLES / "unkept" / f"{_slug(model_uri)}-{settings.target}.zip")
    report = build(options, progress)
    return Bundle(report.artifact, report.manifest, model_uri)


def _resolved(model_uri: str, tracking: str, registry: str) -> tuple[str, dict | None]:
    """(the URI to build, the registry version's identity) — None for what is not a registry version."""
    match = REGISTRY_URI.match(model_uri)
    if not match:
        return model_uri, None
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking, registry)
    name = match["name"]
    try:
        found = client.get_model_version_by_alias(name, match["alias"]) if match["alias"] else client.get_model_version(name, match["version"])
    except MlflowException as exc:
        raise MpackError(f"{model_uri} is not in the registry at {registry}: {exc.message}", "check the model name, version or alias (mlflow models list / the MLflow UI)") from None
    identity = {"registry": registry, "name": name, "version": str(found.version), "source": found.source, "run_id": found.run_id, "created": found.creation_timestamp}
    return f"models:/{name}/{found.version}", identity


def _kept_path(cache_dir: Path, identity: dict, settings: BuildSettings) -> Path:
    wanted = {**identity, "settings": {k: v for k, v in asdict(settings).items() if k != "cache_dir"}, "python_default": os.environ.get("MPACK_PYTHON"), "mpack": _code_digest()}
    key = hashlib.sha256(json.dumps(wanted, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_dir / BUNDLES / f"{_slug(identity['name'])}-{identity['version']}-{settings.target}-{key}.zip"


@cache
def _code_digest() -> str:
    """mpack's own files: a bundle built by other code (an upgrade, an edit) is never reused."""
    digest = hashlib.sha256()
    for package in ("mpack.packager", "mpack.handlers", "mpack.infra", "mpack.templates"):
        root = Path(import_module(package).__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(f"{package}/{path.relative_to(root)}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:64] or "model"


def _zip_manifest(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            return Manifest.from_bytes(archive.read(MANIFEST_NAME), f"{path}:{MANIFEST_NAME}").served()
    except (zipfile.BadZipFile, KeyError, ModelLoadError) as exc:
        raise MpackError(f"the kept bundle {path} is unreadable: {exc}", f"delete it and run again (it is rebuilt): rm {path}") from None
