"""The two common models issue 21 found refused: XGBoost trained on a DataFrame with named columns, and
LightGBM trained with a pandas ``category`` column of strings. Trained here, registered in a real MLflow
store, built to Lambda zips in their own environments, and asked through the bundle with the real
column names on 2,400 fresh rows (missing values, unseen categories and nulls among them): the
answers are the framework's own."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.helpers.bundle_runner import run_events, unzip

pytestmark = pytest.mark.slow

NAMED = ["days_since_login", "monthly_spend", "support_tickets", "tenure_years"]
CITIES = ["berlin", "lisbon", "madrid", "oslo", "paris", "rome", "vienna"]
UNSEEN = ["tokyo", "", "Paris"]  # never trained on: LightGBM reads them as missing
LIGHTGBM_TRUSTED = ["lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor", "lightgbm.basic.Booster", "collections.OrderedDict"]


def named_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Four named double columns (rounded, so values sit on split thresholds; some missing) and three classes."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "days_since_login": np.round(rng.exponential(20, rows), 1),
            "monthly_spend": np.round(rng.gamma(2, 40, rows), 2),
            "support_tickets": rng.poisson(2, rows).astype(float),
            "tenure_years": np.round(rng.uniform(0, 12, rows), 1),
        }
    )
    frame.loc[::9, "monthly_spend"] = np.nan
    score = frame["days_since_login"] / 20 - frame["monthly_spend"].fillna(80) / 60 + frame["support_tickets"] / 2 + rng.normal(0, 0.4, rows)
    return frame, np.digitize(score, [-0.3, 1.0])


def category_frame(rows: int, seed: int, unseen: bool = False) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A pandas category column of strings (every 13th null; with ``unseen``, categories never trained
    on) between two double columns; three classes and a regression target."""
    rng = np.random.default_rng(seed)
    pool = CITIES + UNSEEN if unseen else CITIES
    city = rng.choice(pool, rows).astype(object)
    city[::13] = None
    frame = pd.DataFrame({"age": np.round(rng.normal(40, 12, rows), 1), "city": pd.Categorical(city, categories=sorted(set(pool))), "spend": np.round(rng.gamma(2, 50, rows), 2)})
    effect = {"berlin": 0.5, "lisbon": -1.0, "madrid": -2.0, "oslo": 0.0, "paris": 1.0, "rome": 2.0, "vienna": 1.5}
    target = frame["city"].astype(object).map(effect).astype(float).fillna(3.0) + frame["age"] / 20 + frame["spend"] / 200 + rng.normal(0, 0.3, rows)
    return frame, np.digitize(target, [2.0, 3.5]), target.to_numpy()


def number_category_frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A double column of whole numbers 0-7 that LightGBM is told is categorical, beside a numeric one."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"usage": np.round(rng.normal(0, 1, rows), 2), "plan": rng.integers(0, 8, rows).astype(float)})
    return frame, frame["usage"].to_numpy() + np.where(frame["plan"] % 3 == 0, 2.0, -1.0) + rng.normal(0, 0.2, rows)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A fresh sqlite store: registered name -> (tracking uri, trained model)."""
    import lightgbm
    import mlflow
    import xgboost

    root = tmp_path_factory.mktemp("named-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("named", artifact_location=(root / "artifacts").as_uri())
    named, classes = named_frame(1500, seed=3)
    cities, city_classes, city_target = category_frame(2000, seed=4)
    plans, plan_target = number_category_frame(2000, seed=5)
    trained = {
        "xgb-named-multi": (xgboost.XGBClassifier(n_estimators=40, max_depth=4, objective="multi:softprob").fit(named, classes), named),
        "xgb-named-regressor": (xgboost.XGBRegressor(n_estimators=40, max_depth=4).fit(named, named["days_since_login"] * 0.3 + classes), named),
        "lgbm-category-classifier": (lightgbm.LGBMClassifier(n_estimators=40, min_data_per_group=10, cat_smooth=1, verbose=-1).fit(cities, city_classes), cities),
        "lgbm-category-regressor": (lightgbm.LGBMRegressor(n_estimators=40, min_data_per_group=10, cat_smooth=1, verbose=-1).fit(cities, city_target), cities),
        "lgbm-number-category": (lightgbm.LGBMRegressor(n_estimators=30, min_data_per_group=10, cat_smooth=1, verbose=-1).fit(plans, plan_target, categorical_feature=["plan"]), plans),
    }
    for name, (model, frame) in trained.items():
        with mlflow.start_run(experiment_id=experiment):
            if name.startswith("xgb"):
                mlflow.xgboost.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name)
            elif name.endswith("classifier"):  # as most log it: MLflow infers no signature (its predict refuses the example's strings)
                mlflow.lightgbm.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name, skops_trusted_types=LIGHTGBM_TRUSTED)
            else:
                signature = mlflow.models.infer_signature(frame, model.predict(frame))
                mlflow.lightgbm.log_model(model, name="model", signature=signature, input_example=frame.head(8), registered_model_name=name, skops_trusted_types=LIGHTGBM_TRUSTED)
    return {name: (uri, model) for name, (model, _) in trained.items()}


@pytest.fixture(scope="module")
def bundles(models, runtime_cache, tmp_path_factory):
    """Each model built once per runtime to a Lambda zip: (name, runtime) -> (BuildReport, unzipped folder)."""
    from mpack.packager.pipeline import BuildOptions, build

    out = tmp_path_factory.mktemp("named-dist")
    done = {}

    def get(name: str, runtime: str = "auto"):
        if (name, runtime) not in done:
            uri, _ = models[name]
            options = BuildOptions(model=f"models:/{name}/1", target="lambda", runtime=runtime, tracking_uri=uri, cache_dir=runtime_cache, output=out / f"{name}-{runtime}.zip")
            report = build(options)
            done[name, runtime] = report, unzip(report.artifact, out)
        return done[name, runtime]

    return get


def ask(folder, frame: pd.DataFrame, method: str | None = None) -> np.ndarray:
    """The bundle's answer to a ``dataframe_split`` request naming the frame's own columns (NaN and
    missing categories sent as null, as clients send them)."""
    request = {"dataframe_split": json.loads(frame.astype({c: object for c in frame.columns if frame[c].dtype == "category"}).to_json(orient="split", index=False))}
    if method:
        request["params"] = {"predict_method": method}
    (answer,), _, _ = run_events(folder, [request])
    assert "predictions" in answer, answer
    return np.asarray(answer["predictions"])


def assert_answers_like(folder, model, frame, classifier: bool) -> None:
    """The bundle's answers are the framework's: labels exact and probabilities within 1e-5, or values within 1e-5 relative."""
    got, expected = ask(folder, frame), model.predict(frame)
    assert got.shape == expected.shape
    if classifier:
        assert np.array_equal(got, expected)
        probabilities = ask(folder, frame, "predict_proba")
        assert np.abs(probabilities - model.predict_proba(frame)).max() <= 1e-5
    else:
        assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("name", ["xgb-named-multi", "xgb-named-regressor"])
def test_xgboost_with_named_columns_answers_like_xgboost(models, bundles, name):
    report, folder = bundles(name)
    assert report.parity["passed"] and report.parity["rows"] >= 2000 and "at decision thresholds" in report.parity["source"]
    assert [c["name"] for c in report.manifest["signature"]["columns"]] == NAMED  # requests name the real columns
    model = models[name][1]
    frame = named_frame(2400, seed=17)[0]
    assert_answers_like(folder, model, frame, classifier=name.endswith("multi"))


def test_xgboost_columns_in_another_order_are_read_by_name(models, bundles):
    """The request lists the columns in its own order; the bundle reads them by name."""
    _, folder = bundles("xgb-named-multi")
    frame = named_frame(300, seed=29)[0]
    shuffled = frame[list(reversed(NAMED))]
    assert np.array_equal(ask(folder, shuffled), models["xgb-named-multi"][1].predict(frame))


@pytest.mark.parametrize("name,runtime", [("lgbm-category-classifier", "auto"), ("lgbm-category-regressor", "auto"), ("lgbm-category-classifier", "onnx")])
def test_lightgbm_with_a_category_column_answers_like_lightgbm(models, bundles, name, runtime):
    """Strings in, LightGBM's answers out: every known category, unseen ones and nulls (2,400 rows),
    from the runtime ``auto`` picks (the micro runtime, which passed its own parity gate) and from onnxruntime."""
    report, folder = bundles(name, runtime)
    assert report.parity["passed"] and report.parity["rows"] >= 2000 and "at decision thresholds" in report.parity["source"]
    micro = (report.runtime_choice or {}).get("micro_parity")
    assert micro is None or micro["passed"]
    columns = {c["name"]: c for c in report.manifest["signature"]["columns"]}
    assert list(columns) == ["age", "city", "spend"] and columns["city"]["type"] == "string" and columns["city"]["allow_missing"]
    assert report.manifest["converter"]["thresholds"] == "float64"  # categorical splits numbered, numeric ones kept exact
    model = models[name][1]
    frame = category_frame(2400, seed=17, unseen=True)[0]
    city = frame["city"].astype(object)
    assert city.isin(UNSEEN).sum() > 300 and city.isna().sum() > 150 and set(CITIES) <= set(city.dropna())
    assert_answers_like(folder, model, frame, classifier=name.endswith("classifier"))


def test_unseen_categories_and_nulls_are_answered_as_lightgbm_answers_them(models, bundles):
    """LightGBM re-codes an unseen string or a null as a missing category: so does the bundle."""
    _, folder = bundles("lgbm-category-classifier")
    model = models["lgbm-category-classifier"][1]
    base = category_frame(40, seed=31)[0]
    for value in [None, "tokyo", "", "PARIS"] + CITIES:
        frame = base.assign(city=pd.Categorical([value] * len(base)))
        assert np.abs(ask(folder, frame, "predict_proba") - model.predict_proba(frame)).max() <= 1e-5, value


def test_a_number_category_is_read_as_lightgbm_reads_it(models, bundles):
    """LightGBM reads a categorical number as int(x), toward zero, and -1 or below as no category:
    2.7 is category 2, -0.5 category 0 (the graph's category splits compare exactly, so it truncates too)."""
    report, folder = bundles("lgbm-number-category")
    assert report.parity["passed"] and report.manifest["converter"]["thresholds"] == "float64"
    plans = [2.7, -0.5, -1.0, -1.5, 0.2, 3.0, 7.9, 8.0, 100.0, None, 5.5, 1e-40] * 20
    frame = pd.DataFrame({"usage": np.round(np.random.default_rng(41).normal(0, 1, len(plans)), 2), "plan": np.array(plans, dtype=float)})
    expected = models["lgbm-number-category"][1].predict(frame)
    assert np.abs(ask(folder, frame) - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
