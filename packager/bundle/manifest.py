"""Writing mpack.json: the typed contract (``mpack.handlers.manifest.Manifest``) filled from the build.
The runtime reads it through the same class, so build and run can never disagree on a field."""

from __future__ import annotations

import hashlib
from importlib.metadata import version

from mpack.handlers.manifest import MANIFEST_NAME, Manifest, ModelInfo

__all__ = ["MANIFEST_NAME", "build_manifest", "bundle_manifest", "manifest_bytes", "model_entry"]
DISTRIBUTION = "mpack-serverless"  # what pip installs; the command and namespace are `mpack`


def build_manifest(*, target: str, handler: str, resolved, converted, model_file: str, model_bytes: bytes, runtime, example: dict, options: dict, micro: dict | None = None) -> dict:
    """A one-model manifest as its served view, the plain document the pipeline, the report and the
    scoring core read (``manifest_bytes`` writes it as schema 2)."""
    entry = model_entry(resolved=resolved, converted=converted, model_file=model_file, model_bytes=model_bytes, micro=micro)
    return bundle_manifest(target=target, handler=handler, models=[entry], runtime=runtime, example=example, options=options).served()


def bundle_manifest(*, target: str, handler: str, models: list[ModelInfo], runtime, example: dict, options: dict) -> Manifest:
    """The typed manifest of a bundle holding ``models`` (``model_entry``, one per unit, in order)."""
    return Manifest(mpack_version=version(DISTRIBUTION), target=target, handler=handler, models=models, input_example=example, runtime=runtime.describe(), build=options)


def model_entry(*, resolved, converted, model_file: str, model_bytes: bytes, micro: dict | None = None) -> ModelInfo:
    """One unit's entry in ``models``: which model, its file and sha256, and its contract."""
    return ModelInfo(
        name=resolved.name,
        version=str(resolved.version),
        source=public_source(resolved.source),
        flavor=converted.flavor,
        task=converted.task,
        file=model_file,
        sha256=hashlib.sha256(model_bytes).hexdigest(),
        signature=converted.signature,
        prediction=converted.prediction,
        converter=converted.converter,
        native={k: v for k, v in converted.native.items() if k != "requirements"} if converted.native else None,
        micro=micro,
    )


def public_source(source) -> str:
    """The source as the bundle may show it (``/version``, deploy descriptions): registry and run
    URIs as typed, credentials masked; a local folder or file by its name only, never a host path."""
    from pathlib import PurePath

    from mpack.infra.errors import redact_credentials

    if source.kind in ("directory", "onnx"):
        return f"local:{PurePath(source.reference).name}"
    return redact_credentials(source.uri)


def manifest_bytes(manifest: dict | Manifest) -> bytes:
    """mpack.json as written into bundles (schema 2), from the typed manifest or a served view."""
    return (manifest if isinstance(manifest, Manifest) else Manifest.from_served(manifest)).to_bytes()
