"""Train a demo fraud classifier (StandardScaler + GradientBoostingClassifier, 200 trees, 20
features) and register it in a local sqlite MLflow store as models:/demo-fraud@champion.

    python examples/train_demo.py [--store .mpack-example]

Prints the tracking URI to use with `mpack build --tracking-uri ...`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


def train_and_register(store: Path, name: str = "demo-fraud", trees: int = 200) -> str:
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    store.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{store.resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("mpack-demo")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        "mpack-demo", artifact_location=(store.resolve() / "artifacts").as_uri()
    )
    features, labels = make_classification(n_samples=2000, n_features=20, n_informative=8, random_state=7)
    frame = pd.DataFrame(features, columns=[f"f{i:02d}" for i in range(20)])
    model = Pipeline([("scale", StandardScaler()), ("boost", GradientBoostingClassifier(n_estimators=trees, random_state=7))])
    model.fit(frame, labels)
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_metric("train_accuracy", model.score(frame, labels))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=frame.head(5),
            registered_model_name=name,
            skops_trusted_types=["sklearn.tree._tree.Tree"],  # we made this file ourselves
            # exactly what the flavor loads with: MLflow would otherwise infer requirements from
            # every module imported in this interpreter (a test venv's torch, pytest, rich...)
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        )
    version = info.registered_model_version
    client.set_registered_model_alias(name, "champion", version)
    return tracking_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path(".mpack-example"), help="folder for the sqlite store and artifacts")
    parser.add_argument("--name", default="demo-fraud")
    args = parser.parse_args()
    print(train_and_register(args.store, args.name))


if __name__ == "__main__":
    main()
