"""A custom mlflow.pyfunc.PythonModel, pickled by value (as a class defined in a notebook or script
is), so the model's environment and the bundle load it without this test package."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

# Pins with wheels for Lambda's Python 3.11 (glibc 2.26): today's numpy/pandas need glibc 2.28.
LAMBDA_311_PINS = ["numpy==1.26.4", "pandas==2.2.3"]


class Scorer(mlflow.pyfunc.PythonModel):
    """A linear score and a band: a DataFrame out, as many custom models answer."""

    def load_context(self, context):
        self.weights = (0.5, -1.25, 2.0)  # plain floats: no numpy object pickled into the model

    def predict(self, context, model_input, params=None):
        score = model_input[["a", "b", "c"]].to_numpy(dtype=float) @ np.asarray(self.weights)
        return pd.DataFrame({"score": score, "band": np.where(score > 0, "high", "low")})


def frame(rows: int, seed: int) -> pd.DataFrame:
    values = np.random.default_rng(seed).normal(0, 2, (rows, 3)).round(4)
    return pd.DataFrame(values, columns=["a", "b", "c"])


def log_scorer(store, name: str, pins: list[str]) -> None:
    import sys

    import cloudpickle

    mlflow.set_tracking_uri(store.uri)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with mlflow.start_run():
            mlflow.pyfunc.log_model(name="model", python_model=Scorer(), input_example=frame(3, 0), registered_model_name=name, pip_requirements=[*pins, f"cloudpickle=={cloudpickle.__version__}"])
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
