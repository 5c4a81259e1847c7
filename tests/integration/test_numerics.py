"""DESIGN.md §11 on built bundles: predictions equal to scikit-learn's on thousands of realistic rows,
for the pipeline whose float32 conversion flipped labels and for a float32-signature model; run by
the bundle itself in an isolated interpreter, compared with the original estimator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.bundle_runner import run_events, unzip
from tests.helpers.models import realistic_frame

pytestmark = pytest.mark.slow


def _records(frame):
    return json.loads(frame.to_json(orient="records"))  # NaN -> null, as clients send it


@pytest.mark.parametrize("name", ["realistic", "narrow"])
def test_bundle_equals_scikit_learn_on_thousands_of_rows(store, built, tmp_path, name):
    report = built(f"models:/{name}/1")
    assert report.parity["rows"] >= 2000 and "at decision thresholds" in report.parity["source"]
    label = next(o for o in report.parity["outputs"] if o["method"] == "predict")
    assert label["mismatches"] == 0 and label["passed"]
    estimator = store.estimators[name]
    frame = realistic_frame(3000, seed=11)[0] if name == "realistic" else store.frames[name]
    folder = unzip(report.artifact, tmp_path)
    (labels, proba), _, _ = run_events(
        folder,
        [
            {"dataframe_records": _records(frame)},
            {"dataframe_records": _records(frame), "params": {"predict_method": "predict_proba"}},
        ],
    )
    expected = estimator.predict_proba(frame)
    assert np.abs(np.asarray(proba["predictions"]) - expected).max() < 1e-6
    _assert_same_labels(labels["predictions"], estimator.predict(frame), expected)


def _assert_same_labels(got, expected, probabilities):
    """Equal labels, except where scikit-learn's top two probabilities tie exactly (a 20-of-40 vote:
    ONNX Runtime sums tree votes in float32, 0.50000006 against 0.49999994) - DESIGN.md §11."""
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    differs = np.asarray(got) != np.asarray(expected)
    assert not (differs & (top2[:, 0] != top2[:, 1])).any(), np.flatnonzero(differs)


def test_rows_at_the_models_split_thresholds_get_scikit_learns_labels(store, built, tmp_path):
    """The rows random traffic rarely hits: adjacent float64 values on both sides of every split."""
    from mpack.packager.check.threshold_rows import threshold_records
    from mpack.packager.source.mlmodel import Column

    estimator = store.estimators["realistic"]
    frame = store.frames["realistic"]
    columns = tuple(Column(c, "string" if c == "country" else "double") for c in frame.columns)
    base = tuple(_records(frame.head(20)))
    import pandas as pd

    rows = threshold_records(estimator, columns, base, lambda r: pd.DataFrame(list(r), columns=list(frame.columns)).astype({"amount": float, "age": float, "score": float}))
    assert len(rows) >= 200
    probe = pd.DataFrame(list(rows), columns=list(frame.columns)).astype({"amount": float, "age": float, "score": float})
    folder = unzip(built("models:/realistic/1").artifact, tmp_path)
    (labels,), _, _ = run_events(folder, [{"dataframe_records": _records(probe)}])
    _assert_same_labels(labels["predictions"], estimator.predict(probe), estimator.predict_proba(probe))


def test_null_in_a_string_column_is_served_where_the_model_takes_it(store, built, tmp_path):
    frame = store.frames["realistic"].head(50).copy()
    frame.loc[::3, "country"] = None
    folder = unzip(built("models:/realistic/1").artifact, tmp_path)
    (labels,), _, _ = run_events(folder, [{"dataframe_records": _records(frame)}])
    estimator = store.estimators["realistic"]
    _assert_same_labels(labels["predictions"], estimator.predict(frame), estimator.predict_proba(frame))


def _pipeline(name: str):
    from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, PolynomialFeatures, RobustScaler, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return {
        "imputer+standard+forest": Pipeline([("i", SimpleImputer()), ("s", StandardScaler()), ("m", RandomForestClassifier(30, random_state=0))]),
        "standard+boosting": Pipeline([("s", StandardScaler()), ("m", GradientBoostingClassifier(n_estimators=40, random_state=0))]),
        "minmax+forest": Pipeline([("s", MinMaxScaler()), ("m", RandomForestClassifier(30, random_state=0))]),
        "robust+extratrees": Pipeline([("s", RobustScaler()), ("m", ExtraTreesClassifier(30, random_state=0))]),
        "maxabs+tree": Pipeline([("s", MaxAbsScaler()), ("m", DecisionTreeClassifier(random_state=0))]),
        "poly+standard+logistic": Pipeline([("p", PolynomialFeatures(2)), ("s", StandardScaler()), ("m", LogisticRegression(max_iter=500))]),
    }[name]


@pytest.mark.parametrize("dtype", ["double", "float"])
@pytest.mark.parametrize("name", ["imputer+standard+forest", "standard+boosting", "minmax+forest", "robust+extratrees", "maxabs+tree", "poly+standard+logistic"])
def test_common_preprocessing_passes_the_gate_at_the_thresholds(tmp_path, name, dtype):
    """Each pipeline is logged as MLflow would, converted and checked by the build's own stages (up to
    the parity gate) on its >= 2,000 rows including the rows at its split thresholds: no label may
    differ, probabilities within 1e-5, for float64 and float32 signatures alike (the graph as
    converted: ``--precision fp64``)."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from mpack.packager.pipeline import BuildOptions, staged

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"amount": np.round(rng.lognormal(3, 1, 1500), 2), "count": rng.integers(0, 100, 1500).astype(float), "score": rng.normal(size=1500)})
    frame = frame.astype(np.float64 if dtype == "double" else np.float32)
    labels = ((frame["amount"] > 25) ^ (frame["score"] > 0.3)).astype(int)
    estimator = _pipeline(name).fit(frame, labels)
    folder = tmp_path / "model"
    mlflow.sklearn.save_model(estimator, str(folder), signature=infer_signature(frame, labels), input_example=frame.head(5), serialization_format="cloudpickle")
    options = BuildOptions(model=str(folder), runtime="onnx", precision="fp64", tolerance=1e-5, env_manager="local", allow_pickle=True)
    with staged(options, through="parity") as state:
        unit = state.unit
        assert {c.type for c in unit.model.columns} == {dtype}
        (candidate,) = unit.candidates
        report = candidate.parity
        assert unit.dropped == []
    assert report.rows >= 2000
    assert report.passed, [o for o in report.outputs if not o.passed]
    label = next(o for o in report.outputs if o.method == "predict")
    assert label.mismatches == 0
