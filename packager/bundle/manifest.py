"""Writing mpack.json: the typed contract (``mpack.handlers.manifest.Manifest``) filled from the build.
The runtime reads it through the same class, so build and run can never disagree on a field."""

from __future__ import annotations

import hashlib
from importlib.metadata import version

from mpack.handlers.manifest import MANIFEST_NAME, Manifest, ModelInfo

__all__ = ["MANIFEST_NAME", "build_manifest", "manifest_bytes"]
DISTRIBUTION = "mpack-serverless"  # what pip installs; the command and namespace are `mpack`


def build_manifest(*, target: str, handler: str, resolved, converted, model_file: str, model_bytes: bytes, runtime, example: dict, options: dict, micro: dict | None = None) -> dict:
    """The manifest as a plain document (the pipeline and the report read it as one)."""
    return Manifest(
        mpack_version=version(DISTRIBUTION),
        target=target,
        handler=handler,
        model=ModelInfo(
            name=resolved.name,
            version=str(resolved.version),
            source=public_source(resolved.source),
            flavor=converted.flavor,
            task=converted.task,
            file=model_file,
            sha256=hashlib.sha256(model_bytes).hexdigest(),
        ),
        signature=converted.signature,
        prediction=converted.prediction,
        input_example=example,
        runtime=runtime.describe(),
        converter=converted.converter,
        build=options,
        native={k: v for k, v in converted.native.items() if k != "requirements"} if converted.native else None,
        micro=micro,
    ).to_dict()


def public_source(source) -> str:
    """The source as the bundle may show it (``/version``, deploy descriptions): registry and run
    URIs as typed, credentials masked; a local folder or file by its name only, never a host path."""
    from pathlib import PurePath

    from mpack.infra.errors import redact_credentials

    if source.kind in ("directory", "onnx"):
        return f"local:{PurePath(source.reference).name}"
    return redact_credentials(source.uri)


def manifest_bytes(manifest: dict) -> bytes:
    return Manifest.from_dict(manifest).to_bytes()
