"""``mpack.json``, the contract between build and run, as one typed document: the build writes it and
every reader (the bundle's loader, the local platform, the deployer) reads it through this module,
so a field is named, typed and checked in one place. It ships inside bundles: standard library only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from .errors import ModelLoadError

MANIFEST_NAME = "mpack.json"
SCHEMA_VERSION = 1


class ManifestError(ModelLoadError):
    """mpack.json is missing a field, has one of the wrong type, or comes from a newer mpack."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    source: str  # models:/..., runs:/..., or local:<folder name>: never a host path
    flavor: str
    task: str  # classifier | regressor | generic
    file: str  # the model file inside the bundle
    sha256: str  # of that file, checked at load


@dataclass(frozen=True)
class Manifest:
    mpack_version: str
    target: str
    handler: str
    model: ModelInfo
    signature: dict  # layout, columns, inputs, outputs
    prediction: dict  # default method and each method's outputs
    runtime: dict  # python, arch, onnxruntime, numpy, ...
    converter: dict
    build: dict  # the options that shaped the bundle
    input_example: dict | None = None  # a small scoring request (smoke tests, mpack invoke)
    native: dict | None = None  # --runtime native: the model's own format and outputs
    micro: dict | None = None  # --runtime micro: the compiled module's inputs, outputs and operators
    schema: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)  # fields a reader does not know, kept as they were

    def to_dict(self) -> dict:
        document = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "model", "native", "micro")}
        document["model"] = asdict(self.model)
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
        info = ModelInfo(**{f.name: str(_typed(model, f.name, (str, int), f"{where} model")) for f in fields(ModelInfo)})
        known = {f.name for f in fields(cls)}
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
