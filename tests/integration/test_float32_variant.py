"""The float32 variant of scikit-learn graphs that compute in float64 (issue 22, "precision by
measurement"): real models fitted on float64 data, saved as MLflow models and converted by mpack's own
conversion path; the variant keeps the float64 interface, computes in float32 inside and passes the
parity gate the build runs (the fp16 rule: labels may differ only at near ties) on 2,000 rows."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from mpack.packager.check.parity import check_parity, parity_requests
from mpack.packager.convert.converted import ConversionOptions
from mpack.packager.convert.float32_variant import Float32Unavailable, computes_in_float64, float32_variant
from mpack.packager.convert.optimize import optimize_graph
from mpack.packager.convert.registry import convert_mlmodel
from mpack.packager.source.mlmodel import read_mlmodel

TOLERANCE = 1e-5
ROWS = 2000


def _data(features: int, seed: int, largest_scale: float):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(3000 + ROWS, features)) * rng.uniform(0.5, largest_scale, features), columns=[f"f{i}" for i in range(features)])
    weights = rng.normal(size=features) / np.sqrt(features)
    score = (frame.to_numpy() / frame.to_numpy().std(axis=0)) @ weights
    return frame, score


def _models():
    """{name: (estimator fitted on float64 frames, training frame, check frame)}."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    wide, wide_score = _data(256, 1, 2)
    narrow, narrow_score = _data(12, 2, 20)
    classes = np.digitize(narrow_score, np.quantile(narrow_score, [1 / 3, 2 / 3]))
    fits = {
        "mlp_regressor": (MLPRegressor(hidden_layer_sizes=(64,), max_iter=30, random_state=0), wide, wide_score * 10 + 5),
        "mlp_classifier": (MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=0), narrow, classes),
        "logistic": (LogisticRegression(max_iter=500), narrow, classes),
        "scaled_linear": (Pipeline([("scale", StandardScaler()), ("linear", LinearRegression())]), narrow, narrow_score * 10 + 3),
        "forest": (RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0), narrow, classes),
        "scaled_boosting": (Pipeline([("scale", StandardScaler()), ("boost", GradientBoostingRegressor(n_estimators=20, random_state=0))]), narrow, narrow_score),
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLPs are trained briefly on purpose
        return {name: (estimator.fit(frame[:-ROWS], target[:-ROWS]), frame[:-ROWS], frame[-ROWS:]) for name, (estimator, frame, target) in fits.items()}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{name: (ConvertedModel, check frame)}, each converted from a saved MLflow model as a build does."""
    import mlflow
    from mlflow.models import infer_signature

    folder = tmp_path_factory.mktemp("float32")
    out = {}
    for name, (estimator, frame, check) in _models().items():
        path = folder / name
        mlflow.sklearn.save_model(estimator, str(path), signature=infer_signature(frame, estimator.predict(frame[:5])), input_example=frame.head(3), serialization_format="cloudpickle")
        model = read_mlmodel(path)
        assert {c.type for c in model.columns} == {"double"}
        out[name] = (convert_mlmodel(model, model.input_example, ConversionOptions(allow_pickle=True)), check)
    return out


@pytest.mark.parametrize(
    "name, expected",
    [("mlp_regressor", True), ("mlp_classifier", True), ("logistic", True), ("scaled_linear", True), ("forest", False), ("scaled_boosting", False)],
)
def test_graphs_computing_in_float64_are_told_from_trees_behind_scikit_learns_own_cast(converted, name, expected):
    assert computes_in_float64(converted[name][0].onnx_bytes) is expected


@pytest.mark.parametrize("name", ["forest", "scaled_boosting"])
def test_trees_get_no_float32_variant(converted, name):
    with pytest.raises(Float32Unavailable, match="nowhere outside its tree ensembles"):
        float32_variant(converted[name][0].onnx_bytes)


def _interface(graph):
    return [(v.name, v.type.tensor_type.elem_type, [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]) for v in [*graph.input, *graph.output]]


@pytest.mark.parametrize("name", ["mlp_regressor", "mlp_classifier", "logistic", "scaled_linear"])
def test_the_float32_variant_keeps_the_interface_computes_in_float32_and_passes_the_parity_gate(converted, name):
    model, check = converted[name]
    variant = float32_variant(model.onnx_bytes)

    original, rewritten = onnx.load_from_string(model.onnx_bytes).graph, onnx.load_from_string(variant).graph
    assert _interface(rewritten) == _interface(original)
    assert onnx.TensorProto.DOUBLE in {v.type.tensor_type.elem_type for v in rewritten.input}
    onnx.checker.check_model(onnx.load_from_string(variant), full_check=True)
    inferred = onnx.shape_inference.infer_shapes(onnx.load_from_string(variant), strict_mode=True).graph
    inside = {v.name: v.type.tensor_type.elem_type for v in inferred.value_info}
    assert [name for name, element in inside.items() if element == onnx.TensorProto.DOUBLE] == []  # only the interface is float64
    assert not any(t.data_type == onnx.TensorProto.DOUBLE for t in rewritten.initializer)
    assert computes_in_float64(variant) is False

    feeds = {"input": check.to_numpy()}
    expected = ort.InferenceSession(model.onnx_bytes, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = ort.InferenceSession(optimize_graph(variant), providers=["CPUExecutionProvider"]).run(None, feeds)
    for output, want, have in zip(original.output, expected, got):
        assert have.dtype == want.dtype and have.shape == want.shape, output.name
        if want.dtype == np.float64:
            scaled = np.abs(have - want) / np.maximum(1.0, np.abs(want))
            assert 0 < scaled.max() <= TOLERANCE, (output.name, scaled.max())  # float32 inside: close, not equal

    records = check.to_dict(orient="records")
    report = check_parity(model, optimize_graph(variant), parity_requests(model, records, None), "held-out rows", TOLERANCE, records, near_ties=TOLERANCE)
    assert report.rows == ROWS
    assert report.passed, [o for o in report.outputs if not o.passed]
    assert all(o.max_scaled_diff <= TOLERANCE for o in report.outputs if o.max_scaled_diff is not None)


def test_a_tight_tolerance_fails_the_float32_variant_where_the_float64_graph_passes(converted):
    """The gate is what decides: float32's rounding shows at 1e-9, float64's graph does not."""
    model, check = converted["mlp_regressor"]
    records = check.to_dict(orient="records")
    requests = parity_requests(model, records, None)
    assert check_parity(model, optimize_graph(model.onnx_bytes), requests, "held-out rows", 1e-9, records).passed
    assert not check_parity(model, optimize_graph(float32_variant(model.onnx_bytes)), requests, "held-out rows", 1e-9, records).passed
