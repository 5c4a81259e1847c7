"""The native runtime (``--runtime native``): the model's own scikit-learn object, or a custom MLflow
pyfunc model (loaded by mlflow-skinny, shipped only in such bundles), behind the interface the scoring
core uses for ONNX Runtime — ``run(output_names, feeds)`` and ``get_outputs()`` — for models ONNX
cannot express. Requests are validated and fed exactly as for
ONNX models (columns in signature order, typed from the signature); only the predictor differs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelLoadError


@dataclass(frozen=True)
class NativeOutput:
    name: str
    type: str
    shape: list


class NativeSession:
    def __init__(self, estimator, native: dict, columns: list[str]) -> None:
        self.estimator = estimator
        self.methods = native["outputs"]  # output name -> estimator method ("predict", "predict_proba")
        self.columns = columns
        self.by_name = getattr(estimator, "feature_names_in_", None) is not None

    def run(self, output_names: list[str], feeds: dict) -> list[np.ndarray]:
        features = self._features(feeds)
        return [np.asarray(getattr(self.estimator, self.methods[name])(features)) for name in output_names]

    def get_outputs(self) -> list[NativeOutput]:
        classes = getattr(self.estimator, "classes_", None)
        label_type = "tensor(string)" if classes is not None and np.asarray(classes).dtype.kind in "OUS" else "tensor(int64)"
        types = {"predict": label_type if classes is not None else "tensor(double)", "predict_proba": "tensor(double)"}
        return [NativeOutput(name, types.get(method, "tensor(double)"), [None] if method == "predict" else [None, len(classes or ())]) for name, method in self.methods.items()]

    def _features(self, feeds: dict):
        columns = [feeds[name].reshape(-1) for name in self.columns]
        if self.by_name:  # fitted on a DataFrame: it selects columns by name
            import pandas as pd

            return pd.DataFrame(dict(zip(self.columns, columns)))
        return np.column_stack(columns) if columns else np.empty((0, 0))


class PyfuncSession:
    """A custom MLflow pyfunc model: a DataFrame of the signature's columns in, what its predict
    returns out, as MLflow's scoring server would write it (a DataFrame as records)."""

    def __init__(self, model, columns: list[str]) -> None:
        self.model = model
        self.columns = columns

    def run(self, output_names: list[str], feeds: dict) -> list[np.ndarray]:
        import pandas as pd

        frame = pd.DataFrame({name: feeds[name].reshape(-1) for name in self.columns})
        return [pyfunc_predictions(self.model.predict(frame))]

    def get_outputs(self) -> list[NativeOutput]:
        return [NativeOutput("predictions", "tensor(double)", [None])]


def pyfunc_predictions(predictions) -> np.ndarray:
    """What MLflow's scoring server would answer, as one array: a DataFrame's records, a Series' or
    list's values (the build's parity reference uses it too)."""
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return np.array(predictions.to_dict(orient="records"), dtype=object)
    if isinstance(predictions, pd.Series):
        return predictions.to_numpy()
    return np.asarray(predictions)


def load_pyfunc(data: bytes, columns: list[str]) -> PyfuncSession:
    """The MLflow model folder unpacked under /tmp (the only writable place on Lambda), then loaded
    by MLflow's own pyfunc loader."""
    import atexit
    import shutil
    import tarfile
    import tempfile

    folder = tempfile.mkdtemp(prefix="mpack-model-")
    atexit.register(shutil.rmtree, folder, True)  # a build scores it too: leave no folder behind
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            archive.extractall(folder, filter="data")
        import mlflow.pyfunc

        return PyfuncSession(mlflow.pyfunc.load_model(folder), columns)
    except Exception as exc:  # the model's own loading code can raise anything
        raise ModelLoadError(f"cannot load the pyfunc model: {type(exc).__name__}: {exc}") from None


def load_native(model: Path | bytes, native: dict, columns: list[str]):
    """Unpickle/unskops the shipped model file (its sha256 was checked against the manifest)."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    if native["format"] == "pyfunc":
        return load_pyfunc(data, columns)
    try:
        if native["format"] == "skops":
            import skops.io

            estimator = skops.io.loads(data, trusted=list(native.get("trusted_types") or ()))
        else:
            try:
                import cloudpickle as reader
            except ImportError:  # a plain pickle needs nothing more
                import pickle as reader
            estimator = reader.load(io.BytesIO(data))
    except Exception as exc:  # whatever the file makes the unpickler raise
        raise ModelLoadError(f"cannot load the native model ({native['format']}): {type(exc).__name__}: {exc}") from None
    return NativeSession(estimator, native, columns)


def model_session(manifest: dict, model: Path | bytes, threads: int):
    """The session the manifest asks for: ONNX Runtime, or the native model."""
    native = manifest.get("native")
    if native:
        return load_native(model, native, [c["name"] for c in manifest["signature"].get("columns", ())])
    from .loader import create_session

    return create_session(model, threads)
