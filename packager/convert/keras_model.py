"""TensorFlow/Keras models (mlflow.tensorflow or mlflow.keras: a Keras ``.keras`` file, Keras 3 or
tf.keras; or a TF2 SavedModel) to ONNX with tf2onnx, through a ``tf.function`` over the model with
the signature's tensors (tf2onnx's own Keras entry point does not read Keras 3 models).

TensorFlow runs only here, in the model's build environment; the bundle ships onnxruntime and numpy.
"""

from __future__ import annotations

import os
import warnings

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.onnx import tensor_info
from mpack.packager.convert.tensor_models import check_request, input_names, output_names, rename_graph_values, tensor_answers
from mpack.packager.source.mlmodel import MLmodel

NEWEST_OPSET = 17
IR_VERSION = 8


def load_keras_model(model: MLmodel):
    """(callable, kind): a Keras model loaded in safe mode (no arbitrary lambdas), or a SavedModel's
    serving signature."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter off the build's output
    import tensorflow as tf

    flavor_name = "keras" if model.flavor("keras") is not None else "tensorflow"
    flavor = model.flavor(flavor_name)
    data = model.path / flavor.get("data", "data")
    keras_file = next(iter(sorted(data.glob("*.keras"))), None) if data.is_dir() else (data if data.suffix == ".keras" else None)
    try:
        if keras_file is not None:
            import keras

            return keras.models.load_model(str(keras_file)), "keras"
        saved = data / "tf2model" if (data / "tf2model").is_dir() else data
        loaded = tf.saved_model.load(str(saved))
        signature = loaded.signatures.get(flavor.get("saved_model_signature_def_key") or "serving_default")
        if signature is None:
            raise MpackError("the SavedModel has no serving_default signature", "export the model with a serving signature, or log the Keras model itself")
        return signature, "saved_model"
    except MpackError:
        raise
    except Exception as exc:  # Keras and TensorFlow raise many types for files they cannot read
        raise MpackError(
            f"cannot load the TensorFlow/Keras model: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            "the file is corrupt or needs custom objects; build with --env-manager uv (the model's own TensorFlow)",
        ) from None


def convert_keras(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    import tensorflow as tf
    import tf2onnx

    if not model.tensors:
        raise MpackError(
            "the TensorFlow/Keras model has no tensor signature, so the shapes and dtypes of its inputs are unknown",
            "log it with an input_example (a numpy array or a dict of them) or a signature of TensorSpecs",
        )
    callable_model, kind = load_keras_model(model)
    names, outputs = input_names(model.tensors), output_names(model.tensor_outputs)
    specs = tuple(tf.TensorSpec([None, *[d if d > 0 else None for d in spec["shape"][1:]]], tf.as_dtype(spec["dtype"]), name=name) for name, spec in zip(names, model.tensors))

    @tf.function(input_signature=specs)
    def serve(*tensors):
        if kind == "saved_model":
            return callable_model(**dict(zip(names, tensors)))
        return callable_model(tensors[0] if len(tensors) == 1 else list(tensors), training=False)

    opset = min((options.opset or {}).get("", NEWEST_OPSET), NEWEST_OPSET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph, _ = tf2onnx.convert.from_function(serve, input_signature=specs, opset=opset)
    except Exception as exc:  # tf2onnx names the TensorFlow op it has no handler for
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise MpackError(
            f"tf2onnx {tf2onnx.__version__} (TensorFlow {tf.__version__}) cannot convert this {kind} model: {first}",
            "ship the model as itself with --runtime native (image targets), or export it to ONNX yourself and log it with mlflow.onnx",
        ) from None
    rename_graph_values(graph, names, outputs)
    graph.ir_version = min(graph.ir_version, IR_VERSION)
    request = check_request(model)

    def reference(data: dict) -> dict:
        answer = serve(*[tf.constant(a) for a in request.arrays(model.tensors, data)])
        if isinstance(answer, dict):
            answer = list(answer.values())
        arrays = [a.numpy() for a in answer] if isinstance(answer, (list, tuple)) else [answer.numpy()]
        return tensor_answers(arrays, [o.name for o in graph.graph.output])

    return ConvertedModel(
        onnx_bytes=graph.SerializeToString(),
        signature={"layout": "tensors", "columns": [], "inputs": [tensor_info(i) for i in graph.graph.input], "outputs": [tensor_info(o) for o in graph.graph.output]},
        prediction={"default": "predict", "methods": {"predict": {"outputs": [o.name for o in graph.graph.output]}}},
        flavor="keras" if model.flavor("keras") is not None else "tensorflow",
        task="generic",
        converter={"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "format": kind, "opset": opset},
        reference=reference,
        tensor_check=request.document,
    )
