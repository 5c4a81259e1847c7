"""mpack's errors as MLflow's: MLflow's CLI and callers of ``get_deploy_client`` catch ``MlflowException``,
so an ``MpackError`` crosses the plugin's edge as one, with its message and its hint."""

from __future__ import annotations

from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST

__all__ = ["INTERNAL_ERROR", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "as_mlflow_errors", "refuse"]


@contextmanager
def as_mlflow_errors(target: str):
    from mpack.infra.errors import MpackError

    try:
        yield
    except MpackError as exc:
        hint = f"\nhint: {exc.hint}" if exc.hint else ""
        raise MlflowException(f"{target}: {exc.message}{hint}", INVALID_PARAMETER_VALUE) from exc


def refuse(target: str, message: str, code=INVALID_PARAMETER_VALUE) -> MlflowException:
    return MlflowException(f"{target}: {message}", code)
