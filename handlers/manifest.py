"""``mpack.json``, the contract between build and run, as one typed document: the build writes it and
every reader (the bundle's loader, the local platform, the deployer) reads it through this module,
so a field is named, typed and checked in one place. It ships inside bundles: standard library only.
"""

from __future__ import annotations

import json

from .errors import ModelLoadError

MANIFEST_NAME = "mpack.json"
SCHEMA_VERSION = 1


class ManifestError(ModelLoadError):
    """mpack.json is missing a field, has one of the wrong type, or comes from a newer mpack."""


class ModelInfo:
    """name, version, source (models:/..., runs:/..., or local:<folder name>: never a host path),
    flavor, task (classifier | regressor | generic), file (the model file inside the bundle) and
    its sha256, checked at load."""

    FIELDS = ("name", "version", "source", "flavor", "task", "file", "sha256")
    __slots__ = FIELDS

    def __init__(self, name: str, version: str, source: str, flavor: str, task: str, file: str, sha256: str) -> None:
        self.name, self.version, self.source, self.flavor, self.task, self.file, self.sha256 = name, version, source, flavor, task, file, sha256

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}


class Manifest:
    """The typed manifest. A plain class, not a dataclass: it is read at every cold start, and
    importing ``dataclasses`` costs ~20 ms there.

    Fields: mpack_version, target, handler, model (ModelInfo), signature (layout, columns, inputs,
    outputs), prediction (default method, each method's outputs), runtime (python, arch,
    onnxruntime, numpy, or kind micro/native), converter, build (the options that shaped the
    bundle); optional: input_example (a small scoring request: smoke tests, mpack invoke), native
    (--runtime native: the model's own format and outputs), micro (--runtime micro: the compiled
    module's inputs, outputs and operators), schema, extra (fields a reader does not know, kept)."""

    REQUIRED = ("mpack_version", "target", "handler", "model", "signature", "prediction", "runtime", "converter", "build")
    OPTIONAL = {"input_example": None, "native": None, "micro": None, "schema": SCHEMA_VERSION}
    __slots__ = (*REQUIRED, *OPTIONAL, "extra")

    def __init__(self, extra: dict | None = None, **values) -> None:
        missing = [name for name in self.REQUIRED if name not in values]
        unknown = [name for name in values if name not in self.REQUIRED and name not in self.OPTIONAL]
        if missing or unknown:
            raise TypeError(f"Manifest: missing {missing}, unknown {unknown}")
        for name in self.REQUIRED:
            setattr(self, name, values[name])
        for name, default in self.OPTIONAL.items():
            setattr(self, name, values.get(name, default))
        self.extra = extra or {}

    def to_dict(self) -> dict:
        document = {name: getattr(self, name) for name in self.REQUIRED if name != "model"}
        document.update(input_example=self.input_example, schema=self.schema, model=self.model.to_dict())
        for optional in ("native", "micro"):
            if getattr(self, optional) is not None:
                document[optional] = getattr(self, optional)
        return {**self.extra, **document}

    def to_bytes(self) -> bytes:
        """Deterministic JSON (sorted keys): the same manifest is the same bytes in every build."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_dict(cls, document, where: str = MANIFEST_NAME) -> "Manifest":
        if not isinstance(document, dict):
            raise ManifestError(f"{where} is not a JSON object")
        schema = document.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ManifestError(f"{where} has schema {schema!r}; this mpack reads schema {SCHEMA_VERSION} and older: rebuild the bundle or upgrade mpack")
        model = _typed(document, "model", dict, where)
        info = ModelInfo(**{name: str(_typed(model, name, (str, int), f"{where} model")) for name in ModelInfo.FIELDS})
        known = {*cls.REQUIRED, *cls.OPTIONAL, "extra"}
        values = {
            "mpack_version": str(document.get("mpack_version") or "unknown"),
            "target": _typed(document, "target", str, where),
            "handler": _typed(document, "handler", str, where),
            "signature": _typed(document, "signature", dict, where),
            "prediction": _typed(document, "prediction", dict, where),
            "runtime": _typed(document, "runtime", dict, where),
            "converter": document.get("converter") or {},
            "build": document.get("build") or {},
            "input_example": document.get("input_example"),
            "native": document.get("native"),
            "micro": document.get("micro"),
        }
        return cls(model=info, schema=schema, extra={k: v for k, v in document.items() if k not in known}, **values)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = MANIFEST_NAME) -> "Manifest":
        try:
            return cls.from_dict(json.loads(data), where)
        except (ValueError, RecursionError) as exc:
            raise ManifestError(f"{where} is not valid JSON: {exc}") from None


def _typed(document: dict, key: str, kind, where: str):
    value = document.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{where} lacks '{key}' or it has the wrong type; rebuild the bundle with mpack build")
    return value
