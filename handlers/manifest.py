"""``mpack.json``, the contract between build and run, as one typed document: the build writes it and
every reader (the bundle's loader, the local platform, the deployer) reads it through this module,
so a field is named, typed and checked in one place. It ships inside bundles: standard library only.

Schema 2 lists the bundle's models (``models``: one entry per unit). Schema 1, written by every
earlier mpack, held one model spread over the top level; it is still read, as schema 2 with one
model, so old bundles keep running. Scoring code reads one model's ``served`` view: the
single-model shape it always read.
"""

from __future__ import annotations

import json

from .errors import ModelLoadError

MANIFEST_NAME = "mpack.json"
SCHEMA_VERSION = 2


class ManifestError(ModelLoadError):
    """mpack.json is missing a field, has one of the wrong type, or comes from a newer mpack."""


class ModelInfo:
    """One entry of ``models``: name, version, source (models:/..., runs:/..., or local:<folder
    name>: never a host path), flavor, task (classifier | regressor | generic), file (the model
    file inside the bundle) and its sha256, checked at load; signature (layout, columns, inputs,
    outputs), prediction (default method, each method's outputs), converter (names and versions);
    optional: native (--runtime native: the model's own format and outputs), micro (--runtime
    micro: the compiled module's inputs, outputs and operators), extra (fields a reader does not
    know, kept)."""

    IDENTITY = ("name", "version", "source", "flavor", "task", "file", "sha256")  # the served view's "model"
    FIELDS = IDENTITY
    __slots__ = (*IDENTITY, "signature", "prediction", "converter", "native", "micro", "extra")

    def __init__(
        self,
        name: str,
        version: str,
        source: str,
        flavor: str,
        task: str,
        file: str,
        sha256: str,
        signature: dict | None = None,
        prediction: dict | None = None,
        converter: dict | None = None,
        native: dict | None = None,
        micro: dict | None = None,
        extra: dict | None = None,
    ) -> None:
        self.name, self.version, self.source, self.flavor, self.task, self.file, self.sha256 = name, version, source, flavor, task, file, sha256
        self.signature, self.prediction, self.converter = signature or {}, prediction or {}, converter or {}
        self.native, self.micro, self.extra = native, micro, extra or {}

    def identity(self) -> dict:
        """Which model and file: what ``/version``, logs and deploy descriptions name."""
        return {name: getattr(self, name) for name in self.IDENTITY}

    def to_dict(self) -> dict:
        entry = {**self.extra, **self.identity(), "signature": self.signature, "prediction": self.prediction, "converter": self.converter}
        for optional in ("native", "micro"):
            if getattr(self, optional) is not None:
                entry[optional] = getattr(self, optional)
        return entry

    @classmethod
    def from_dict(cls, entry, where: str) -> ModelInfo:
        """A schema 2 entry; ``where`` names it in errors (``mpack.json models[0] (fraud)``)."""
        if not isinstance(entry, dict):
            raise ManifestError(f"{where} is not a JSON object; rebuild the bundle with mpack build")
        if isinstance(entry.get("name"), str):
            where = f"{where} ({entry['name']})"
        known = {*cls.IDENTITY, "signature", "prediction", "converter", "native", "micro"}
        return cls(
            **{name: str(_typed(entry, name, (str, int), where)) for name in cls.IDENTITY},
            signature=_typed(entry, "signature", dict, where),
            prediction=_typed(entry, "prediction", dict, where),
            converter=entry.get("converter") or {},
            native=entry.get("native"),
            micro=entry.get("micro"),
            extra={k: v for k, v in entry.items() if k not in known},
        )


class Manifest:
    """The typed manifest. A plain class, not a dataclass: it is read at every cold start, and
    importing ``dataclasses`` costs ~20 ms there.

    Fields: mpack_version, target, handler, models (ModelInfo, one per unit), runtime (python, arch,
    onnxruntime, numpy, or kind micro/native), build (the options that shaped the bundle);
    optional: input_example (a small scoring request: smoke tests, mpack invoke), extra (fields a
    reader does not know, kept). ``schema`` is the schema the document was read from (1 for a
    bundle built before models were listed); ``to_dict`` always writes ``SCHEMA_VERSION``."""

    REQUIRED = ("mpack_version", "target", "handler", "models", "runtime", "build")
    OPTIONAL = {"input_example": None}
    __slots__ = (*REQUIRED, *OPTIONAL, "schema", "extra")

    def __init__(self, extra: dict | None = None, schema: int = SCHEMA_VERSION, **values) -> None:
        missing = [name for name in self.REQUIRED if name not in values]
        unknown = [name for name in values if name not in self.REQUIRED and name not in self.OPTIONAL]
        if missing or unknown:
            raise TypeError(f"Manifest: missing {missing}, unknown {unknown}")
        for name in self.REQUIRED:
            setattr(self, name, values[name])
        for name, default in self.OPTIONAL.items():
            setattr(self, name, values.get(name, default))
        if not self.models or not all(isinstance(m, ModelInfo) for m in self.models):
            raise TypeError("Manifest: models must be a non-empty list of ModelInfo")
        self.models = list(self.models)
        self.schema, self.extra = schema, extra or {}

    def served(self, index: int = 0) -> dict:
        """One model's view, the single-model document the scoring core reads: the top-level fields
        with that model's signature, prediction, converter, native and micro, and ``model`` (its
        name, version, source, flavor, task, file, sha256)."""
        model = self.models[index]
        view = {
            **self.extra,
            **model.extra,
            "mpack_version": self.mpack_version,
            "target": self.target,
            "handler": self.handler,
            "runtime": self.runtime,
            "build": self.build,
            "input_example": self.input_example,
            "schema": self.schema,
            "signature": model.signature,
            "prediction": model.prediction,
            "converter": model.converter,
            "model": model.identity(),
        }
        for optional in ("native", "micro"):
            if getattr(model, optional) is not None:
                view[optional] = getattr(model, optional)
        return view

    def to_dict(self) -> dict:
        """The document as schema ``SCHEMA_VERSION`` writes it (a schema 1 manifest comes out as 2)."""
        document = {name: getattr(self, name) for name in self.REQUIRED if name != "models"}
        document.update(input_example=self.input_example, schema=SCHEMA_VERSION, models=[model.to_dict() for model in self.models])
        return {**self.extra, **document}

    def to_bytes(self) -> bytes:
        """Deterministic JSON (sorted keys): the same manifest is the same bytes in every build."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_dict(cls, document, where: str = MANIFEST_NAME) -> Manifest:
        """A manifest as written: schema 2, or schema 1 (presented as schema 2 with one model)."""
        if not isinstance(document, dict):
            raise ManifestError(f"{where} is not a JSON object")
        schema = document.get("schema", SCHEMA_VERSION if "models" in document else 1)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema > SCHEMA_VERSION:
            raise ManifestError(f"{where} has schema {schema!r}; this mpack reads schema {SCHEMA_VERSION} and older: rebuild the bundle or upgrade mpack")
        if schema < 2:
            return cls._read(document, where, [_single_model(document, where)], SCHEMA1_FIELDS, schema)
        entries = _typed(document, "models", list, where)
        if not entries:
            raise ManifestError(f"{where} lists no models; rebuild the bundle with mpack build")
        models = [ModelInfo.from_dict(entry, f"{where} models[{i}]") for i, entry in enumerate(entries)]
        return cls._read(document, where, models, {*cls.REQUIRED, *cls.OPTIONAL, "schema"}, schema)

    @classmethod
    def from_served(cls, view: dict, where: str = "the served manifest") -> Manifest:
        """Back from one model's ``served`` view (what ``build_manifest`` hands the pipeline)."""
        if not isinstance(view, dict):
            raise ManifestError(f"{where} is not a JSON object")
        return cls._read(view, where, [_single_model(view, where)], SCHEMA1_FIELDS, SCHEMA_VERSION)

    @classmethod
    def _read(cls, document: dict, where: str, models: list, known, schema: int) -> Manifest:
        return cls(
            mpack_version=str(document.get("mpack_version") or "unknown"),
            target=_typed(document, "target", str, where),
            handler=_typed(document, "handler", str, where),
            models=models,
            runtime=_typed(document, "runtime", dict, where),
            build=document.get("build") or {},
            input_example=document.get("input_example"),
            schema=schema,
            extra={k: v for k, v in document.items() if k not in known},
        )

    @classmethod
    def from_bytes(cls, data: bytes, where: str = MANIFEST_NAME) -> Manifest:
        try:
            return cls.from_dict(json.loads(data), where)
        except (ValueError, RecursionError) as exc:
            raise ManifestError(f"{where} is not valid JSON: {exc}") from None


# schema 1 and the served view: one model, its identity under "model" and its contract at the top level
SCHEMA1_FIELDS = frozenset(("schema", "mpack_version", "target", "handler", "model", "signature", "prediction", "runtime", "converter", "build", "input_example", "native", "micro", "extra"))


def _single_model(document: dict, where: str) -> ModelInfo:
    """Schema 1's one model: its identity under "model", its contract at the top level."""
    identity = _typed(document, "model", dict, where)
    contract = {key: document[key] for key in ("signature", "prediction", "converter", "native", "micro") if key in document}
    return ModelInfo.from_dict({**identity, **contract}, f"{where} model")


def _typed(document: dict, key: str, kind, where: str):
    value = document.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{where} lacks '{key}' or it has the wrong type; rebuild the bundle with mpack build")
    return value
