"""The MLflow registry client mpack uses (builds read versions and download them; ``mpack sync`` also reads
aliases and writes tags), with MLflow's errors made actionable. MLflow is imported only when one is made."""

from __future__ import annotations

import os
from pathlib import Path

from mpack.infra.errors import MpackError

STAGES = {"production": "Production", "staging": "Staging", "archived": "Archived", "none": "None"}


class Registry:
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

    def aliases_and_tags(self, name: str) -> tuple[dict[str, str], dict[str, str]]:
        """(alias -> version, the model's tags), in one read of the registered model (``search_model_versions``
        returns no aliases on SQL stores)."""
        model = self._registered_model(name)
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}, dict(model.tags or {})

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._call(lambda: self.client.set_registered_model_tag(name, key, value), "write tags of")

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self._call(lambda: self.client.get_model_version(name, version), "read").tags or {})

    def set_version_tags(self, name: str, version: str, tags: dict[str, str | None]) -> None:
        """Set each tag; None deletes it (a tag absent already is no error)."""
        current = self.version_tags(name, version)
        for key, value in tags.items():
            if value is None and key in current:
                self._call(lambda key=key: self.client.delete_model_version_tag(name, version, key), "write tags of")
            elif value is not None and current.get(key) != value:
                self._call(lambda key=key, value=value: self.client.set_model_version_tag(name, version, key, value), "write tags of")

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
