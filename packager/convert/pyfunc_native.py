"""Custom ``mlflow.pyfunc`` models (a PythonModel, or a loader_module) shipped as themselves: no ONNX
graph can express arbitrary Python, so the bundle carries the MLflow model folder (one deterministic
tar, checked by sha256 like any model file), the model's own pinned requirements, and mlflow-skinny
— a cloudpickled PythonModel cannot be unpickled without MLflow's pyfunc modules. The bundle loads
it with ``mlflow.pyfunc.load_model`` and answers what that model's ``predict`` returns.

Loading such a model runs its author's code (cloudpickle, loader modules), so it needs
``--allow-pickle`` as any pickle does.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from mpack.handlers.native_model import pyfunc_predictions
from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.source.examples import typed_frame
from mpack.packager.source.mlmodel import NATIVE_DTYPES, MLmodel
from mpack.packager.source.requirements import PYFUNC_FRAMEWORK, package_name, requirement_lines

MODEL_ARCHIVE = "model.mlflow.tar"
RUNS_CODE = "a custom pyfunc model runs its author's code (cloudpickle, loader modules) when loaded"


def native_pyfunc(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    from importlib.metadata import version

    import mlflow.pyfunc

    if not options.allow_pickle:
        raise MpackError(f"{RUNS_CODE}, on this machine and in the bundle", "if you trust where this model came from, pass --allow-pickle (or allow_pickle = true under [tool.mpack])")
    if not model.columns:
        raise MpackError(
            "the custom pyfunc model has no column signature, so mpack cannot check its requests",
            "log it with a signature (infer_signature, or an input_example DataFrame); tensor-signature pyfunc models are not served natively yet",
        )
    try:
        loaded = mlflow.pyfunc.load_model(str(model.path))
    except Exception as exc:  # the model's own loading code can raise anything
        raise MpackError(
            f"the custom pyfunc model does not load in its environment: {type(exc).__name__}: {str(exc)[:300]}",
            "if it needs a package, add it when logging (pip_requirements / extra_pip_requirements) and log it again",
        ) from None
    columns = model.columns

    def reference(rows) -> dict:
        return {"predict": pyfunc_predictions(loaded.predict(typed_frame(columns, rows)))}

    signature = {
        "layout": "columns",
        "columns": [{"name": c.name, "type": c.type, "dtype": NATIVE_DTYPES[c.type], "allow_missing": False} for c in columns],
        "inputs": [{"name": c.name, "dtype": NATIVE_DTYPES[c.type], "shape": [-1, 1]} for c in columns],
        "outputs": [{"name": "predictions", "dtype": "any", "shape": [-1]}],
    }
    mlflow_version = model.mlflow_version or version("mlflow-skinny" if _has("mlflow-skinny") else "mlflow")
    native = {"format": "pyfunc", "trusted_types": [], "outputs": {"predictions": "predict"}, "requirements": bundle_requirements(model, mlflow_version)}
    return ConvertedModel(
        onnx_bytes=b"",
        signature=signature,
        prediction={"default": "predict", "methods": {"predict": {"outputs": ["predictions"]}}},
        flavor="python_function",
        task="generic",
        converter={"runtime": "native", "mlflow": mlflow_version, "loader_module": model.flavor("python_function").get("loader_module"), "python": _python()},
        reference=reference,
        columns=tuple(columns),
        native=native,
        model_file=MODEL_ARCHIVE,
        model_bytes=folder_archive(model.path),
    )


def bundle_requirements(model: MLmodel, mlflow_version: str) -> list[str]:
    """The model's pins (without MLflow itself), then mlflow-skinny at the version that logged it."""
    wanted = [r for r in requirement_lines(model.path / "requirements.txt") if package_name(r) != PYFUNC_FRAMEWORK]
    return [*wanted, f"{PYFUNC_FRAMEWORK}=={mlflow_version}"]


def folder_archive(folder: Path) -> bytes:
    """The model folder as an uncompressed tar with fixed metadata: byte-identical rebuilds."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            with open(path, "rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def _python() -> str:
    import sys

    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _has(package: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(package)
        return True
    except PackageNotFoundError:
        return False
