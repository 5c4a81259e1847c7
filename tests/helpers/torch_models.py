"""PyTorch models trained here and logged the ways MLflow offers: torch.export (.pt2, MLflow 3's
default) and TorchScript (pickle format). Built from torch's own layers only, so nothing from the
test modules has to be importable where the model is loaded."""

from __future__ import annotations

import numpy as np

WIDTH = 12


def classifier():
    """An MLP whose output is a softmax over three classes, trained a few steps on synthetic data."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(WIDTH, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3), torch.nn.Softmax(dim=1))
    x = torch.randn(512, WIDTH)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(50):
        optimizer.zero_grad()
        torch.nn.functional.nll_loss(torch.log(model(x) + 1e-9), y).backward()
        optimizer.step()
    return model.eval()


def rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (count, WIDTH)).astype(np.float32)


def log_torch_models(store) -> dict:
    import mlflow.pytorch
    import torch

    mlflow.set_tracking_uri(store.uri)
    model = classifier()
    example = rows(4, seed=1)
    logged = {"torch-export": model, "torch-script": torch.jit.script(model)}
    with mlflow.start_run():
        mlflow.pytorch.log_model(model, name="model", input_example=example, registered_model_name="torch-export")
    with mlflow.start_run():
        mlflow.pytorch.log_model(logged["torch-script"], name="model", input_example=example, registered_model_name="torch-script", serialization_format="pickle")
    return logged
