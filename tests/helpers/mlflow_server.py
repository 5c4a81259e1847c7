"""A real ``mlflow server`` on 127.0.0.1 (sqlite backend, proxied artifacts), as teams run their registry, with
webhooks allowed to reach 127.0.0.1 over http (MLflow refuses private addresses and http by default)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def mlflow_server(root: Path):
    """The server's tracking URI, while it runs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # MLflow caches who subscribes to an event for 60 s: a webhook made in a test must be seen at once
    env = {**os.environ, "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_CACHE_TTL": "1"}
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    log = open(root / "mlflow-server.log", "wb")  # noqa: SIM115 - kept open while the server runs
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"mlflow server did not start: {(root / 'mlflow-server.log').read_text()[-2000:]}") from None
            time.sleep(0.3)
    try:
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def register_versions(uri: str, model: str, strengths: tuple = (1.0, 0.1, 0.01)):
    """One registered LogisticRegression version per regularization strength (versions that answer differently),
    alias ``champion`` on version 1; the registry's client."""
    import mlflow
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from tests.helpers.models import fraud_frame

    mlflow.set_tracking_uri(uri)
    x, y = fraud_frame()
    for c in strengths:
        with mlflow.start_run():
            mlflow.sklearn.log_model(LogisticRegression(C=c).fit(x, y), name="model", input_example=x.head(3), registered_model_name=model)
    client = MlflowClient(uri)
    client.set_registered_model_alias(model, "champion", "1")
    return client
