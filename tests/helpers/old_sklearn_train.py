"""Runs under scikit-learn 1.5: trains an AdaBoost (SAMME.R, removed in 1.6), logs it with MLflow,
and writes its own predictions on check rows, the truth the bundle must reproduce."""

import json, sys
import mlflow, numpy as np, pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import AdaBoostClassifier

out = sys.argv[1]
X, y = make_classification(3000, 6, n_informative=4, n_classes=3, random_state=0)
frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
model = AdaBoostClassifier(n_estimators=40, random_state=0).fit(frame.iloc[:600], y[:600])
mlflow.sklearn.save_model(model, f"{out}/model", input_example=frame.head(3), serialization_format="cloudpickle")
check = frame.iloc[600:]
json.dump({"records": json.loads(check.to_json(orient="records")), "labels": model.predict(check).tolist(), "proba": model.predict_proba(check).tolist()}, open(f"{out}/truth.json", "w"))
