"""mpack.json, the contract between build and run: the runtime reads only it and the model file."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

from mpack.handlers.loader import MANIFEST_NAME  # the runtime reads it: one name for both sides

__all__ = ["MANIFEST_NAME", "build_manifest", "manifest_bytes"]
SCHEMA_VERSION = 1
DISTRIBUTION = "mpack-serverless"  # what pip installs; the command and namespace are `mpack`


def build_manifest(*, target: str, handler: str, resolved, converted, model_file: str, model_bytes: bytes, runtime, example: dict, options: dict) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "mpack_version": version(DISTRIBUTION),
        "target": target,
        "handler": handler,
        "model": {
            "name": resolved.name,
            "version": resolved.version,
            "source": public_source(resolved.source),
            "flavor": converted.flavor,
            "task": converted.task,
            "file": model_file,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
        },
        "signature": converted.signature,
        "prediction": converted.prediction,
        "input_example": example,
        "runtime": runtime.describe(),
        "converter": converted.converter,
        "build": options,
        **({"native": {k: v for k, v in converted.native.items() if k != "requirements"}} if converted.native else {}),
    }


def public_source(source) -> str:
    """The source as the bundle may show it (``/version``, deploy descriptions): registry and run
    URIs as typed, credentials masked; a local folder or file by its name only, never a host path."""
    from pathlib import PurePath

    from mpack.infra.errors import redact_credentials

    if source.kind in ("directory", "onnx"):
        return f"local:{PurePath(source.reference).name}"
    return redact_credentials(source.uri)


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
