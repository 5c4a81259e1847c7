"""From a resolved model to one ONNX graph plus the runtime contract (signature, predict methods).

Converters are chosen from a registry by MLflow flavor; adding one never touches the others. The registry
only dispatches: flavor modules import the data they return from ``converted``, never this module. A
flavor's module is imported when a model of that flavor is converted, so importing the registry loads no
converter library (the scikit-learn module alone loads onnx).
"""

from __future__ import annotations

from typing import Protocol

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.onnx import from_mlflow_onnx, from_onnx_file
from mpack.packager.convert.tensor_signature import as_tensor_model, matrix_tensor
from mpack.packager.source.mlmodel import MLmodel, read_mlmodel
from mpack.packager.source.resolve import ResolvedModel


class Converter(Protocol):
    def __call__(self, model: MLmodel, records: tuple[dict, ...] | None, options: ConversionOptions) -> ConvertedModel: ...


def _sklearn(model, records, options):
    from mpack.packager.convert.sklearn import convert_sklearn

    return convert_sklearn(model, records, options)


def _onnx(model, records, options):
    return from_mlflow_onnx(model, options.opset)


def _xgboost(model, records, options):
    from mpack.packager.convert.xgboost_model import convert_xgboost

    return convert_xgboost(model, records, options)


def _lightgbm(model, records, options):
    from mpack.packager.convert.lightgbm_model import convert_lightgbm

    return convert_lightgbm(model, records, options)


def _pytorch(model, records, options):
    from mpack.packager.convert.pytorch_model import convert_pytorch

    return convert_pytorch(model, records, options)


def _catboost(model, records, options):
    from mpack.packager.convert.catboost_model import convert_catboost

    return convert_catboost(model, records, options)


def _keras(model, records, options):
    from mpack.packager.convert.keras_model import convert_keras

    return convert_keras(model, records, options)


CONVERTERS: dict[str, Converter] = {
    "sklearn": _sklearn,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "catboost": _catboost,
    "pytorch": _pytorch,
    "tensorflow": _keras,
    "keras": _keras,
    "onnx": _onnx,
}


def read_model(resolved: ResolvedModel) -> MLmodel | None:
    """The MLmodel of a folder source; None for a bare .onnx file."""
    return None if resolved.path.is_file() else read_mlmodel(resolved.path)


def convert(resolved: ResolvedModel, model: MLmodel | None, records, options: ConversionOptions) -> ConvertedModel:
    if model is None:
        return from_onnx_file(resolved.path, None, options.opset)
    return convert_mlmodel(model, records, options)


def convert_mlmodel(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    flavor = model_flavor(model)
    if flavor is None:
        found = ", ".join(sorted(k for k in model.flavors if k != "python_function")) or "python_function only"
        raise MpackError(
            f"model flavor not supported for ONNX bundles: {found}",
            f"supported flavors: {', '.join(CONVERTERS)} (and plain .onnx files); export the model to ONNX and log it with mlflow.onnx",
        )
    converted = CONVERTERS[flavor](model, records, options)
    tensor = matrix_tensor(model)
    if tensor and converted.signature["layout"] == "matrix" and converted.reference is not None and not converted.native:
        converted = as_tensor_model(converted, model, tensor)  # as MLflow feeds it: the tensor, not columns
    return converted


def model_flavor(model: MLmodel) -> str | None:
    """The flavor mpack converts this model from (the first it knows, in registry order)."""
    return next((flavor for flavor in CONVERTERS if model.flavor(flavor) is not None), None)


class LocalConverter:
    """Conversion in this interpreter (``--env-manager local``, ONNX files); the same interface as
    ``EnvironmentConverter``, which converts in the model's own environment."""

    def convert(self, model: MLmodel, records, options: ConversionOptions, as_itself: bool = False) -> ConvertedModel:
        """To ONNX, or (``as_itself``) the model's own file with the contract to serve it natively."""
        if as_itself:
            from mpack.packager.convert.native import native_model

            return native_model(model, records, options)
        return convert_mlmodel(model, records, options)

    def scoring(self, manifest: dict, model_bytes: bytes):
        """The converted model scored here, through the bundle's protocol core."""
        from mpack.packager.check.scoring import scoring_service

        return scoring_service(manifest, model_bytes)
