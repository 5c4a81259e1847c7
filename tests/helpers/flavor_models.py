"""XGBoost, LightGBM and CatBoost models trained here and registered in the test store, the way users log
them (mlflow.xgboost / mlflow.lightgbm / mlflow.catboost, signature from an input example with missing values)."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(6)]
LIGHTGBM_TRUSTED = ["lightgbm.sklearn.LGBMClassifier", "lightgbm.basic.Booster", "collections.OrderedDict"]


def tabular(rows: int, seed: int):
    """Six double columns (every seventh value of f1 missing) and three classes."""
    from sklearn.datasets import make_classification

    x, y = make_classification(rows, len(FEATURES), n_informative=4, n_classes=3, random_state=seed)
    frame = pd.DataFrame(np.round(x, 3), columns=FEATURES)  # rounded: values that sit on split thresholds
    frame.iloc[::7, 1] = np.nan
    return frame, y


def log_flavor_models(store) -> dict:
    """Registered names -> the trained models."""
    import catboost
    import lightgbm
    import mlflow
    import xgboost
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    mlflow.set_tracking_uri(store.uri)
    frame, labels = tabular(800, seed=5)
    target = frame["f0"].fillna(0).to_numpy() * 3 + labels
    trained = {
        "xgb-classifier": xgboost.XGBClassifier(n_estimators=40, max_depth=4).fit(frame, labels),
        "xgb-booster": xgboost.train({"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(frame, label=labels == 1), 30),
        "lgbm-classifier": lightgbm.LGBMClassifier(n_estimators=40, verbose=-1).fit(frame, labels),
        "lgbm-booster": lightgbm.train({"objective": "regression", "verbose": -1}, lightgbm.Dataset(frame, label=target), 30),
        "cb-classifier": catboost.CatBoostClassifier(iterations=40, depth=4, verbose=0, random_seed=0, allow_writing_files=False).fit(frame, labels),
        "cb-regressor": catboost.CatBoostRegressor(iterations=40, depth=4, verbose=0, random_seed=0, allow_writing_files=False).fit(frame, target),
        # inside scikit-learn Pipelines, logged with mlflow.sklearn: float64 scaling, then XGBoost's
        # float32 cast, or LightGBM's float64 comparisons
        "xgb-pipeline": Pipeline([("scale", StandardScaler()), ("boost", xgboost.XGBClassifier(n_estimators=40, max_depth=4))]).fit(frame, labels),
        "lgbm-pipeline": Pipeline([("scale", StandardScaler()), ("boost", lightgbm.LGBMClassifier(n_estimators=40, verbose=-1))]).fit(frame, labels),
    }
    for name, model in trained.items():
        with mlflow.start_run():
            if name.endswith("pipeline"):
                mlflow.sklearn.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name, serialization_format="cloudpickle")
            elif name.startswith("xgb"):
                mlflow.xgboost.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name)
            elif name.startswith("cb"):
                mlflow.catboost.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name)
            else:
                mlflow.lightgbm.log_model(model, name="model", input_example=frame.head(8), registered_model_name=name, skops_trusted_types=LIGHTGBM_TRUSTED)
    return trained
