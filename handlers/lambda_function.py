"""AWS Lambda adapter: the model is loaded at import (Lambda's init phase), then every event source
is answered through the one protocol core.

- direct invocation: the payload is an MLflow scoring request; the result is the MLflow body
  (``{"predictions": ...}`` or ``{"error_code", "message"}``);
- API Gateway REST/HTTP, Function URL, ALB: answered here (``lambda_http: direct``, the default) or through Mangum (``asgi``);
- SQS: each record is a request, failed records come back in ``batchItemFailures``.
Each source is a small class in ``lambda_sources``, chosen by its ``infer(event)``.
Logs are Powertools JSON lines with the request id; metrics are EMF (Latency, Rows, Errors).
"""

from __future__ import annotations

import os
import time

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from . import lambda_sources
from .loader import load
from .protocol import ScoringService
from .snapstart import register_hooks

MODEL = load()
SERVICE = ScoringService(MODEL.manifest, MODEL.session)
_SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or f"mpack-{MODEL.manifest['model']['name']}"

logger = Logger(service=_SERVICE_NAME)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "mpack"), service=_SERVICE_NAME)

if MODEL.manifest.get("build", {}).get("lambda_http") == "asgi":
    from .lambda_asgi import AsgiHttp

    _http = AsgiHttp(SERVICE)
else:
    _http = lambda_sources.NativeHttp(SERVICE)
SOURCES = lambda_sources.event_sources(SERVICE, _http, logger)
register_hooks(SERVICE, MODEL.manifest.get("input_example"), logger.info)  # SnapStart only


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    started = time.perf_counter()
    source = lambda_sources.source_for(event, SOURCES)
    outcome = source.answer(event, context)
    if outcome.response is not None:
        lambda_sources.log_failure(logger, source.name, outcome.response)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000)
    metrics.add_metric(name="Rows", unit=MetricUnit.Count, value=outcome.rows)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=outcome.errors)
    return outcome.result
