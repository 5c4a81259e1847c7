"""Model sources: parse what the user typed, then fetch the model into a local folder.

``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME/STAGE``, ``runs:/RUN_ID/PATH``,
a local MLflow model directory, or a plain ``.onnx`` file. MLflow is imported only here (and only
for registry/run sources); its exceptions are translated into ``MpackError`` with a hint.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.errors import MpackError

STAGES = {"production": "Production", "staging": "Staging", "archived": "Archived", "none": "None"}
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
    registry = _Registry(tracking_uri, registry_uri)
    if source.kind == "registry":
        version = registry.model_version(source.name, source.reference)
        path = registry.download(registry.version_location(source.name, version), workdir)
        return ResolvedModel(source, source.name, str(version), path)
    registry.run(source.reference)
    path = registry.download(source.uri, workdir)
    return ResolvedModel(source, source.name, source.reference[:8], path)


class _Registry:
    """The few MLflow client calls a build needs, with MLflow's errors made actionable."""

    def __init__(self, tracking_uri: str | None, registry_uri: str | None) -> None:
        # Fail fast on an unreachable server instead of MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        import mlflow
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
        self.registry_uri = registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri
        _check_store(self.tracking_uri)
        self.client = self._call(lambda: MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri), "connect to")

    def model_version(self, name: str, reference: str) -> str:
        registered = self._registered_model(name)
        if reference.startswith("@"):
            alias = reference[1:]
            aliases = dict(registered.aliases or {})
            if alias not in aliases:
                raise MpackError(
                    f"registered model '{name}' has no alias '{alias}'",
                    f"aliases of '{name}': {', '.join(sorted(aliases)) or 'none'}; set one with MlflowClient().set_registered_model_alias",
                )
            return str(aliases[alias])
        if reference.isdigit():
            try:
                return self._call(lambda: self.client.get_model_version(name, reference), "read", missing=True).version
            except _Missing:
                raise MpackError(f"registered model '{name}' has no version {reference}", f"versions of '{name}': {self._versions(name)}") from None
        stage = STAGES.get(reference.lower())
        if stage is None:
            raise MpackError(
                f"'{reference}' in models:/{name}/{reference} is neither a version number nor a stage",
                "use models:/NAME/3, models:/NAME/Production or models:/NAME@ALIAS",
            )
        found = self._call(lambda: self.client.get_latest_versions(name, stages=[stage]), "read")
        if not found:
            raise MpackError(f"registered model '{name}' has no version in stage {stage}", f"versions of '{name}': {self._versions(name)}")
        return found[0].version

    def version_location(self, name: str, version: str) -> str:
        """Where the version's files are stored (no global registry URI is set, so nothing leaks
        into this process's environment)."""
        return self._call(lambda: self.client.get_model_version_download_uri(name, version), "read")

    def run(self, run_id: str) -> None:
        try:
            self._call(lambda: self.client.get_run(run_id), "read", missing=True)
        except _Missing:
            raise MpackError(f"run '{run_id}' not found in tracking store {self.tracking_uri}", "check the run id (mlflow ui, or MlflowClient().search_runs)") from None

    def download(self, uri: str, workdir: Path) -> Path:
        import mlflow.artifacts

        target = workdir / "model"
        target.mkdir(parents=True, exist_ok=True)
        try:
            self._call(lambda: mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target), tracking_uri=self.tracking_uri), "download from", missing=True)
        except _Missing:
            raise MpackError(f"no model artifacts at {uri}", "check the artifact path inside the run (e.g. runs:/RUN_ID/model)") from None
        return _model_root(target, uri)

    # -- internals ----------------------------------------------------------------------------------

    def _registered_model(self, name: str):
        try:
            return self._call(lambda: self.client.get_registered_model(name), "read", missing=True)
        except _Missing:
            names = [m.name for m in self._call(lambda: self.client.search_registered_models(max_results=20), "read")]
            raise MpackError(
                f"registered model '{name}' not found in registry {self.registry_uri}",
                f"registered models there: {', '.join(names) or 'none'}; check --tracking-uri / --registry-uri",
            ) from None

    def _versions(self, name: str) -> str:
        versions = self.client.search_model_versions(f"name='{name}'")
        described = [f"{v.version} ({v.current_stage})" if v.current_stage not in (None, "None") else str(v.version) for v in versions]
        return ", ".join(sorted(described, key=lambda s: int(s.split()[0]))) or "none"

    def _call(self, action, verb: str, missing: bool = False):
        from mlflow.exceptions import MlflowException

        try:
            return action()
        except MlflowException as exc:
            if missing and exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise _Missing() from None
            raise self._translate(exc, verb) from None
        except OSError as exc:
            if missing and isinstance(exc, FileNotFoundError):
                raise _Missing() from None
            raise MpackError(f"cannot {verb} the MLflow store {self.tracking_uri}: {exc}", "check --tracking-uri and that the store is reachable") from None

    def _translate(self, exc, verb: str) -> MpackError:
        text = str(exc).splitlines()[0][:300]
        if any(s in text for s in ("Max retries", "Connection", "connect", "timed out", "unable to open database")):
            return MpackError(f"cannot reach the MLflow store {self.tracking_uri}: {text}", "check --tracking-uri (or MLFLOW_TRACKING_URI) and that the server is running")
        return MpackError(f"MLflow could not {verb} the model: {text}", "check the model URI and --tracking-uri / --registry-uri")


class _Missing(Exception):
    """MLflow said the resource does not exist; the caller knows which one."""


def _check_store(uri: str) -> None:
    """A sqlite store whose file does not exist would be created empty: refuse instead."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise MpackError(f"MLflow store {uri} does not exist (no file {path})", "check --tracking-uri (or MLFLOW_TRACKING_URI)")
        with open(path, "rb") as handle:
            header = handle.read(16)
        if header and header != b"SQLite format 3\x00":
            raise MpackError(f"MLflow store {uri} is not an SQLite database ({path} is some other file)", "check --tracking-uri (or MLFLOW_TRACKING_URI): it should name the mlflow.db file")


def _model_root(download: Path, uri: str) -> Path:
    """The folder holding MLmodel inside a download (artifacts may land one level down)."""
    if (download / "MLmodel").is_file():
        return download
    found = sorted(download.rglob("MLmodel"), key=lambda p: len(p.parts))
    if found:
        return found[0].parent
    onnx_files = sorted(download.rglob("*.onnx"))
    if len(onnx_files) == 1:
        return onnx_files[0]
    raise MpackError(f"artifacts at {uri} contain no MLmodel file", "point at the folder of a logged model, e.g. runs:/RUN_ID/model")
