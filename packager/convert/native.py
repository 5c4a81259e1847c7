"""``--runtime native``: a scikit-learn model shipped as itself, for image targets, when ONNX cannot
express it (or when asked). The contract is the same as for ONNX bundles (columns in signature
order, predict methods, validation); the columns are fed with their own types (float64, int64,
strings), the model file travels unchanged, and the runtime libraries are the model's own
requirements, pinned as MLflow recorded them, without MLflow itself.
"""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.pyfunc_native import native_pyfunc
from mpack.packager.convert.sklearn_reference import SklearnReference, columns_accepting_missing, columns_from_estimator, describe_estimator
from mpack.packager.source.mlmodel import NATIVE_DTYPES, MLmodel
from mpack.packager.source.requirements import package_name, requirement_lines
from mpack.packager.source.sklearn_model import load_sklearn_model

REQUIRED = ("scikit-learn", "numpy")


def native_model(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    from importlib.metadata import version

    from sklearn.base import is_classifier

    flavor = model.flavor("sklearn")
    if flavor is None and model.custom_pyfunc:
        return native_pyfunc(model, records, options)
    if flavor is None:
        raise MpackError(
            f"--runtime native ships scikit-learn and custom pyfunc models, not {', '.join(sorted(set(model.flavors) - {'python_function'}))}",
            "drop --runtime native: this flavor converts to ONNX",
        )
    estimator = load_sklearn_model(model.path, flavor, options.trusted_types, options.allow_pickle)
    columns = model.columns or columns_from_estimator(estimator)
    classifier = is_classifier(estimator)
    outputs = {"label": "predict"} if classifier else {"variable": "predict"}
    methods = {"predict": {"outputs": ["label"]}} if classifier else {"predict": {"outputs": ["variable"], "squeeze": True}}
    if classifier and hasattr(estimator, "predict_proba"):
        outputs["probabilities"] = "predict_proba"
        methods["predict_proba"] = {"outputs": ["probabilities"]}
    reference = SklearnReference(estimator, columns)
    allow_missing = columns_accepting_missing(reference, columns, records)
    file = model.path / flavor.get("pickled_model", "model.pkl")
    signature = {
        "layout": "columns",
        "columns": [{"name": c.name, "type": c.type, "dtype": NATIVE_DTYPES.get(c.type, "string"), "allow_missing": c.name in allow_missing} for c in columns],
        "inputs": [{"name": c.name, "dtype": NATIVE_DTYPES.get(c.type, "string"), "shape": [-1, 1]} for c in columns],
        "outputs": [{"name": name, "dtype": "float64" if method == "predict_proba" else "any", "shape": [-1]} for name, method in outputs.items()],
    }
    native = {
        "format": flavor.get("serialization_format", "pickle"),
        "trusted_types": sorted(set(flavor.get("skops_trusted_types") or ()) | set(options.trusted_types)),
        "outputs": outputs,
        "requirements": model_requirements(model),
    }
    return ConvertedModel(
        onnx_bytes=b"",
        signature=signature,
        prediction={"default": "predict", "methods": methods},
        flavor="sklearn",
        task="classifier" if classifier else "regressor",
        converter={"runtime": "native", "scikit-learn": version("scikit-learn"), "estimator": describe_estimator(estimator)},
        reference=reference,
        columns=tuple(columns),
        native=native,
        model_file=file.name,
        model_bytes=file.read_bytes(),
    )


def model_requirements(model: MLmodel) -> list[str]:
    """The model's pinned requirements (requirements.txt as MLflow logged it), without MLflow;
    scikit-learn and numpy at this machine's versions when the file does not name them."""
    wanted = requirement_lines(model.path / "requirements.txt")
    names = {package_name(w) for w in wanted}
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        from importlib.metadata import version

        wanted += [f"{name}=={version(name)}" for name in missing]
    return wanted
