"""AWS Lambda adapter: the model is loaded at import (Lambda's init phase), then every event source
is answered through the one protocol core.

- direct invocation: the payload is an MLflow scoring request; the result is the MLflow body
  (``{"predictions": ...}`` or ``{"error_code", "message"}``);
- API Gateway REST/HTTP, Function URL, ALB: native (default) or through Mangum (``lambda_http: asgi``);
- SQS: each record is a request, failed records come back in ``batchItemFailures``.
Logs are Powertools JSON lines with the request id; metrics are EMF (Latency, Rows, Errors).
"""

from __future__ import annotations

import os
import time

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from . import lambda_events
from .loader import load
from .protocol import ScoringService

MODEL = load()
SERVICE = ScoringService(MODEL.manifest, MODEL.session)
_SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or f"mpack-{MODEL.manifest['model']['name']}"

logger = Logger(service=_SERVICE_NAME)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "mpack"), service=_SERVICE_NAME)

if MODEL.manifest.get("build", {}).get("lambda_http") == "asgi":
    from .lambda_asgi import AsgiHttp

    _http = AsgiHttp(SERVICE)
else:
    _http = lambda_events.NativeHttp(SERVICE)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event, context):
    started = time.perf_counter()
    kind = lambda_events.event_kind(event)
    if kind == lambda_events.SQS:
        from .lambda_sqs import handle_batch

        result, rows, errors = handle_batch(event, context, SERVICE, logger)
    elif kind == lambda_events.DIRECT:
        response = SERVICE.score_document(event)
        result, rows, errors = response.body, response.rows, int(not response.ok)
        _log_failure(kind, response)
    else:
        problem = lambda_events.http_event_problem(event, kind)
        if problem:
            result, response = lambda_events.malformed_http_answer(event, kind, problem)
        else:
            result, response = _http(event, context, kind)
        rows, errors = response.rows, int(not response.ok)
        _log_failure(kind, response)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000)
    metrics.add_metric(name="Rows", unit=MetricUnit.Count, value=rows)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=errors)
    return result


def _log_failure(kind: str, response) -> None:
    if response.status >= 500:
        logger.error("prediction failed", extra={"event_source": kind, "status": response.status, "response": response.body})
    elif response.status >= 400:
        logger.warning("request refused", extra={"event_source": kind, "status": response.status, "response": response.body})
