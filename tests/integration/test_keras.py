"""A Keras 3 model registered with mlflow.tensorflow in a real MLflow store, converted by tf2onnx in
its own environment, answering through the Lambda bundle what MLflow's own loader answers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.bundle_runner import run_events, unzip

pytestmark = pytest.mark.slow
WIDTH = 10


@pytest.fixture(scope="module")
def keras_model(store):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import mlflow.tensorflow

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((WIDTH,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(0, 1, (256, WIDTH)).astype("float32")
    model.fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int), epochs=3, verbose=0)
    mlflow.set_tracking_uri(store.uri)
    with mlflow.start_run():
        mlflow.tensorflow.log_model(model, name="model", input_example=x[:4], registered_model_name="keras-mlp")
    return "models:/keras-mlp/1"


def test_keras_bundle_answers_like_mlflows_own_loader(store, built, keras_model, tmp_path):
    import mlflow.pyfunc

    report = built(keras_model)
    assert report.manifest["model"]["flavor"] == "tensorflow" and report.manifest["converter"]["format"] == "keras"
    assert report.parity["passed"] and report.parity["rows"] >= 2000
    x = np.random.default_rng(5).normal(0, 2, (2400, WIDTH)).astype("float32")
    expected = mlflow.pyfunc.load_model(keras_model).predict(x)
    (answer, one), modules, _ = run_events(unzip(report.artifact, tmp_path), [{"inputs": x.tolist()}, {"instances": x[:1].tolist()}])
    assert not any(m.split(".")[0] in ("tensorflow", "keras") for m in modules)
    assert np.abs(np.asarray(answer["predictions"]) - expected).max() < 1e-5
    assert np.asarray(one["predictions"]).shape == (1, 4)
