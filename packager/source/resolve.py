"""Model sources: parse what the user typed, then fetch the model into a local folder.

``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME/STAGE``, ``runs:/RUN_ID/PATH``,
a local MLflow model directory, or a plain ``.onnx`` file. MLflow is imported only here (and only
for registry/run sources); its exceptions are translated into ``MpackError`` with a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.source.registry import Registry

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ModelSource:
    uri: str
    kind: str  # "registry" | "run" | "directory" | "onnx"
    name: str
    reference: str  # alias, version, stage, run id or path


@dataclass(frozen=True)
class ResolvedModel:
    source: ModelSource
    name: str
    version: str
    path: Path  # the MLflow model folder, or the .onnx file

    @property
    def file_stem(self) -> str:
        """``<model>-<version>``, safe for file names."""
        return f"{_SAFE_NAME.sub('_', self.name)}-{_SAFE_NAME.sub('_', self.version)}"


def parse_source(uri: str) -> ModelSource:
    if not uri.strip():
        raise MpackError("--model is empty", "pass models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH, a model folder or a .onnx file")
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :].strip("/")
        if "@" in rest:
            name, alias = rest.split("@", 1)
            if name and alias and "/" not in alias:
                return ModelSource(uri, "registry", name, "@" + alias)
        elif rest.count("/") == 1:
            name, ref = rest.split("/")
            if name and ref:
                return ModelSource(uri, "registry", name, ref)
        raise MpackError(
            f"cannot read model URI {uri!r}",
            "use models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/STAGE (Production, Staging, ...)",
        )
    if uri.startswith("runs:/"):
        parts = uri[len("runs:/") :].strip("/").split("/", 1)
        if len(parts) == 2 and all(parts):
            return ModelSource(uri, "run", parts[1].rstrip("/").split("/")[-1], parts[0])
        raise MpackError(f"cannot read run URI {uri!r}", "use runs:/RUN_ID/ARTIFACT_PATH, e.g. runs:/0a1b2c.../model")
    if "://" in uri:
        raise MpackError(
            f"unsupported model source {uri!r}",
            "use models:/..., runs:/..., a local MLflow model folder or a .onnx file",
        )
    path = Path(uri).expanduser()
    if path.is_dir():
        return ModelSource(uri, "directory", path.resolve().name, str(path.resolve()))
    if path.is_file() and path.suffix.lower() == ".onnx":
        return ModelSource(uri, "onnx", path.stem, str(path.resolve()))
    if path.exists():
        raise MpackError(f"{uri} is neither an MLflow model folder nor a .onnx file", "point --model at a folder with an MLmodel file or at a .onnx file")
    raise MpackError(f"model path {uri} does not exist", "check the path, or use models:/NAME@ALIAS for a registered model")


def resolve(source: ModelSource, workdir: Path, tracking_uri: str | None = None, registry_uri: str | None = None) -> ResolvedModel:
    """Fetch the model into ``workdir`` (registry/run) or use it in place (local)."""
    if source.kind in ("directory", "onnx"):
        path = Path(source.reference)
        return ResolvedModel(source, source.name, "local", path)
    registry = Registry(tracking_uri, registry_uri)
    if source.kind == "registry":
        version = registry.model_version(source.name, source.reference)
        path = registry.download(registry.version_location(source.name, version), workdir)
        return ResolvedModel(source, source.name, str(version), path)
    registry.run(source.reference)
    path = registry.download(source.uri, workdir)
    return ResolvedModel(source, source.name, source.reference[:8], path)
