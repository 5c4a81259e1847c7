"""mpack.json, the contract between build and run: the runtime reads only it and the model file."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

from mpack.handlers.loader import MANIFEST_NAME  # the runtime reads it: one name for both sides

__all__ = ["MANIFEST_NAME", "build_manifest", "manifest_bytes"]
SCHEMA_VERSION = 1


def build_manifest(*, target: str, handler: str, resolved, converted, model_file: str, model_bytes: bytes, runtime, example: dict, options: dict) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "mpack_version": version("mpack"),
        "target": target,
        "handler": handler,
        "model": {
            "name": resolved.name,
            "version": resolved.version,
            "source": resolved.source.uri,
            "flavor": converted.flavor,
            "task": converted.task,
            "file": model_file,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "source_files": dict(resolved.files),
        },
        "signature": converted.signature,
        "prediction": converted.prediction,
        "input_example": example,
        "runtime": runtime.describe(),
        "converter": converted.converter,
        "build": options,
        **({"native": {k: v for k, v in converted.native.items() if k != "requirements"}} if converted.native else {}),
    }


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
