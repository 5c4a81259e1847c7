"""AWS Lambda adapter of the micro runtime: the same event sources and answers as
``lambda_function``, with the standard library alone (no numpy, onnxruntime or Powertools).

The compiled model is loaded at import (Lambda's init phase); logs and EMF metrics keep
Powertools' shapes (``lambda_json_log``).
"""

from __future__ import annotations

import os
import time

from . import lambda_sources
from .lambda_json_log import EmfMetrics, JsonLogger
from .loader import load
from .micro_events import MicroHttp, MicroSqsBatch
from .protocol import ScoringService
from .snapstart import register_hooks

MODEL = load()
SERVICE = ScoringService(MODEL.manifest, MODEL.session)
_SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or f"mpack-{MODEL.manifest['model']['name']}"

logger = JsonLogger(_SERVICE_NAME)
metrics = EmfMetrics(os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "mpack"), _SERVICE_NAME)
_http = MicroHttp(SERVICE)
SOURCES = (MicroSqsBatch(SERVICE, logger), *(kind(_http) for kind in lambda_sources.HTTP_SOURCES), lambda_sources.DirectInvocation(SERVICE))
register_hooks(SERVICE, MODEL.manifest.get("input_example"), logger.info)  # SnapStart only
_cold = True


def handler(event, context):
    global _cold
    started = time.perf_counter()
    logger.bind(context, _cold)
    _cold = False
    source = lambda_sources.source_for(event, SOURCES)
    outcome = source.answer(event, context)
    if outcome.response is not None:
        lambda_sources.log_failure(logger, source.name, outcome.response)
    metrics.flush(
        {
            "Latency": ("Milliseconds", (time.perf_counter() - started) * 1000),
            "Rows": ("Count", outcome.rows),
            "Errors": ("Count", outcome.errors),
        }
    )
    return outcome.result
