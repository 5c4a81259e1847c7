"""Real models, trained in the test session and logged to a real sqlite MLflow store."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

TREE = ["sklearn.tree._tree.Tree"]


@dataclass
class Store:
    uri: str
    root: Path
    fraud_run_id: str = ""
    local_dir: Path = Path()
    corrupt_dir: Path = Path()
    empty_dir: Path = Path()
    onnx_file: Path = Path()
    estimators: dict = field(default_factory=dict)
    frames: dict = field(default_factory=dict)


def fraud_frame(rows: int = 400, seed: int = 1):
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=rows, n_features=8, n_informative=5, random_state=seed)
    return pd.DataFrame(features, columns=[f"f{i}" for i in range(8)]), labels


def mixed_frame(rows: int = 300, seed: int = 2):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.uniform(18, 90, rows),
            "income": rng.uniform(1e4, 2e5, rows),
            "city": rng.choice(["berlin", "lisbon", "oslo"], rows),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )
    frame.loc[::9, "age"] = np.nan
    labels = ((frame["income"] > 9e4) ^ (frame["city"] == "oslo")).astype(int).to_numpy()
    return frame, labels


def realistic_frame(rows: int, seed: int = 3):
    """Transactions as they arrive: amounts in cents, whole ages with gaps, scores, a country."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": np.round(rng.lognormal(3, 1, rows), 2),
            "age": rng.integers(18, 90, rows).astype(float),
            "score": np.round(rng.random(rows), 3),
            "country": rng.choice(["us", "fr", "de", "jp"], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "age"] = np.nan
    labels = ((frame["amount"] > 30) ^ (frame["country"] == "fr") ^ (frame["score"] > 0.7)).astype(int).to_numpy()
    return frame, labels


def populate(root: Path) -> Store:
    import mlflow
    from mlflow.tracking import MlflowClient
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("tests", artifact_location=(root / "artifacts").as_uri())
    store = Store(uri, root)

    fraud_x, fraud_y = fraud_frame()
    fraud = Pipeline([("scale", StandardScaler()), ("boost", GradientBoostingClassifier(n_estimators=30, random_state=0))]).fit(fraud_x, fraud_y)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(fraud, name="model", input_example=fraud_x.head(3), registered_model_name="fraud", skops_trusted_types=TREE)
    store.fraud_run_id = run.info.run_id
    logistic = LogisticRegression().fit(fraud_x, fraud_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(logistic, name="model", input_example=fraud_x.head(3), registered_model_name="fraud")
    client.set_registered_model_alias("fraud", "champion", "1")
    client.set_registered_model_alias("fraud", "challenger", "2")
    client.transition_model_version_stage("fraud", "2", "Production")

    mixed_x, mixed_y = mixed_frame()
    columns = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ]
    )
    mixed = Pipeline([("columns", columns), ("clf", LogisticRegression())]).fit(mixed_x, mixed_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(mixed, name="model", input_example=mixed_x.head(4), registered_model_name="mixed", serialization_format="cloudpickle")

    house_x = fraud_x.copy()
    house_y = 150_000 + 40_000 * fraud_x["f0"].to_numpy() + 5_000 * fraud_x["f1"].to_numpy()
    house = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(house_x, house_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(house, name="model", input_example=house_x.head(3), registered_model_name="house", serialization_format="pickle")

    # DESIGN.md §11: the pipeline whose float32 conversion flipped labels, and a float32-signature
    # scaler + GBM (reciprocal multiply vs division)
    from sklearn.ensemble import RandomForestClassifier

    realistic_x, realistic_y = realistic_frame(3000)
    realistic = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["amount", "age", "score"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["country"]),
                    ]
                ),
            ),
            ("forest", RandomForestClassifier(n_estimators=40, random_state=0)),
        ]
    ).fit(realistic_x, realistic_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(realistic, name="model", input_example=realistic_x.head(5), registered_model_name="realistic", skops_trusted_types=TREE + ["numpy.dtype"])
    narrow_x = fraud_x.astype(np.float32)
    narrow = Pipeline([("scale", StandardScaler()), ("boost", GradientBoostingClassifier(n_estimators=40, random_state=0))]).fit(narrow_x, fraud_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(narrow, name="model", input_example=narrow_x.head(3), registered_model_name="narrow", skops_trusted_types=TREE)

    # skl2onnx has no converter for NearestCentroid: image targets ship it natively (--runtime native)
    from sklearn.neighbors import NearestCentroid

    centroid = Pipeline([("scale", StandardScaler()), ("centroid", NearestCentroid())]).fit(fraud_x, fraud_y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(centroid, name="model", input_example=fraud_x.head(3), registered_model_name="centroid", serialization_format="cloudpickle")

    onnx_model = _logistic_onnx(logistic)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.onnx.log_model(onnx_model, name="model", input_example=fraud_x.head(2).to_numpy(dtype=np.float32), registered_model_name="onnx-model")
    store.onnx_file = root / "plain.onnx"
    store.onnx_file.write_bytes(onnx_model.SerializeToString())

    with mlflow.start_run(experiment_id=experiment):
        mlflow.pyfunc.log_model(name="model", python_model=_Echo(), registered_model_name="custom")

    store.local_dir = root / "local-model"
    mlflow.sklearn.save_model(fraud, str(store.local_dir), input_example=fraud_x.head(3), skops_trusted_types=TREE)
    store.corrupt_dir = root / "corrupt-model"
    shutil.copytree(store.local_dir, store.corrupt_dir)
    skops_file = store.corrupt_dir / "model.skops"
    skops_file.write_bytes(skops_file.read_bytes()[: skops_file.stat().st_size // 3])
    store.empty_dir = root / "not-a-model"
    store.empty_dir.mkdir()
    store.estimators = {"fraud": fraud, "logistic": logistic, "mixed": mixed, "house": house, "centroid": centroid, "realistic": realistic, "narrow": narrow}
    store.frames = {"fraud": fraud_x, "mixed": mixed_x, "realistic": realistic_x, "narrow": narrow_x}
    return store


def _logistic_onnx(estimator):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    return to_onnx(estimator, initial_types=[("input", FloatTensorType([None, 8]))], options={"zipmap": False}, target_opset={"": 15, "ai.onnx.ml": 3})


class _Echo:
    """A pyfunc model: a flavor mpack cannot turn into ONNX."""

    def __new__(cls):
        import mlflow.pyfunc

        class Echo(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input

        return Echo()
