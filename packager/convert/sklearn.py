"""scikit-learn estimators and Pipelines (ColumnTransformer included) to ONNX with skl2onnx.

Numeric columns are fed in the dtype scikit-learn computes in when MLflow feeds it the signature's
types: float32 when every numeric column is ``float``, else float64 (pandas upcasts mixed frames), so
imputers, scalers and linear steps run in float64 and trees cast to float32 themselves, as scikit-learn
does (DESIGN.md §11). A model logged with a tensor signature is converted over the tensor's features, typed by its dtype (``tensor_signature``). String columns are string tensors. A model fed one [rows, columns] matrix is
fastest, so that layout is used whenever no column is a string and nothing selects columns by name.
"""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.check.threshold_rows import threshold_records
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.onnx import tensor_info
from mpack.packager.convert.sklearn_graph import final_step, regressor_width, sklearn_to_onnx
from mpack.packager.convert.sklearn_reference import SklearnReference, columns_accepting_missing, columns_from_estimator, describe_estimator
from mpack.packager.convert.tensor_signature import feature_columns, matrix_tensor
from mpack.packager.source.mlmodel import MLmodel
from mpack.packager.source.sklearn_model import load_sklearn_model


def convert_sklearn(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    import skl2onnx
    import sklearn
    from sklearn.base import is_classifier, is_regressor

    estimator = load_sklearn_model(model.path, model.flavor("sklearn"), options.trusted_types, options.allow_pickle)
    tensor = matrix_tensor(model)  # the registry then gives the graph that tensor (tensor_signature)
    columns = feature_columns(tensor, getattr(estimator, "feature_names_in_", None)) if tensor else (model.columns or columns_from_estimator(estimator))
    if is_classifier(estimator):
        task = "classifier"
    elif is_regressor(estimator):
        task = "regressor"
    else:
        raise MpackError(
            f"{type(estimator).__name__} is neither a classifier nor a regressor",
            "mpack serves scikit-learn classifiers and regressors (estimators or Pipelines ending in one)",
        )
    layout = "columns" if _selects_by_name(estimator) or any(c.type == "string" for c in columns) else "matrix"
    numeric_dtype = numeric_feed_dtype(columns)
    try:
        onnx_model = _to_onnx(estimator, columns, layout, numeric_dtype, options.opset, task == "classifier")
    except MpackError:
        if numeric_dtype == "float32":
            raise
        # skl2onnx lacks a float64 path for some estimators (HistGradientBoosting): feed float32
        # and let the parity gate, with its rows at the model's thresholds, judge the difference.
        numeric_dtype = "float32"
        onnx_model = _to_onnx(estimator, columns, layout, numeric_dtype, options.opset, task == "classifier")
    outputs = [o.name for o in onnx_model.graph.output]
    reference = SklearnReference(estimator, columns)
    allow_missing = columns_accepting_missing(reference, columns, records)
    signature = {
        "layout": layout,
        "columns": [{"name": c.name, "type": c.type, "dtype": "string" if c.type == "string" else numeric_dtype, "allow_missing": c.name in allow_missing} for c in columns],
        "inputs": _inputs(columns, layout, numeric_dtype),
        "outputs": [tensor_info(o) for o in onnx_model.graph.output],
    }
    if task == "classifier":
        methods = {"predict": {"outputs": [outputs[0]]}}
        if hasattr(estimator, "predict_proba") and len(outputs) > 1:
            methods["predict_proba"] = {"outputs": [outputs[1]]}
    else:
        methods = {"predict": {"outputs": [outputs[0]], "squeeze": regressor_width(final_step(estimator)) == 1}}
    return ConvertedModel(
        onnx_bytes=onnx_model.SerializeToString(),
        signature=signature,
        prediction={"default": "predict", "methods": methods},
        flavor="sklearn",
        task=task,
        converter={"skl2onnx": skl2onnx.__version__, "scikit-learn": sklearn.__version__, "estimator": describe_estimator(estimator)},
        reference=reference,
        columns=tuple(columns),
        boundary_records=lambda base: threshold_records(estimator, columns, base, reference.frame),
    )


def numeric_feed_dtype(columns) -> str:
    """float32 only when every numeric column is MLflow ``float``; otherwise scikit-learn sees float64."""
    numeric = [c.type for c in columns if c.type != "string"]
    return "float32" if numeric and all(t == "float" for t in numeric) else "float64"


def _selects_by_name(estimator) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, ColumnTransformer):
        return True
    if isinstance(estimator, Pipeline):
        return any(_selects_by_name(step) for _, step in estimator.steps)
    return False


def _inputs(columns, layout: str, numeric_dtype: str) -> list[dict]:
    if layout == "matrix":
        return [{"name": "input", "dtype": numeric_dtype, "shape": [-1, len(columns)]}]
    return [{"name": c.name, "dtype": "string" if c.type == "string" else numeric_dtype, "shape": [-1, 1]} for c in columns]


def _to_onnx(estimator, columns, layout: str, numeric_dtype: str, opset: dict | None, classifier: bool):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    numeric_type = DoubleTensorType if numeric_dtype == "float64" else FloatTensorType
    if layout == "matrix":
        initial_types = [("input", numeric_type([None, len(columns)]))]
    else:
        initial_types = [(c.name, StringTensorType([None, 1]) if c.type == "string" else numeric_type([None, 1])) for c in columns]
    try:
        graph = sklearn_to_onnx(estimator, initial_types, opset, classifier)
        _loadable(graph)
        return graph
    except Exception as exc:  # skl2onnx raises RuntimeError/MissingShapeCalculator/NotImplementedError...
        import skl2onnx

        raise MpackError(
            f"skl2onnx {skl2onnx.__version__} cannot convert {describe_estimator(estimator)}: {str(exc).splitlines()[0][:200]}",
            f"ship the model as itself with --runtime native, or export it to ONNX yourself and log it with mlflow.onnx (skl2onnx converts {_supported_summary()})",
        ) from None


def _loadable(graph) -> None:
    """ONNX Runtime must accept the graph's types (skl2onnx's float64 paths sometimes mix float and
    double in one Concat): refused here, so the caller can convert in float32 instead."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    ort.InferenceSession(graph.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


POPULAR = (
    "LogisticRegression", "LinearRegression", "Ridge", "SGDClassifier", "DecisionTreeClassifier",
    "RandomForestClassifier", "RandomForestRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "SVC", "KNeighborsClassifier", "MLPClassifier",
    "ColumnTransformer", "OneHotEncoder", "StandardScaler", "SimpleImputer",
)  # fmt: skip


def _supported_summary() -> str:
    from skl2onnx import supported_converters

    names = {name.replace("Sklearn", "") for name in supported_converters()}
    return f"{len(names)} converters, including " + ", ".join(n for n in POPULAR if n in names) + " (Pipelines of them too)"
