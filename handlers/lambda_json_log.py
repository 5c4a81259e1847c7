"""Structured log lines and EMF metrics in the shapes AWS Lambda Powertools writes them, with the
standard library only (the micro runtime's bundles carry no Powertools).

Deliberately not Powertools here: importing its Logger and Metrics costs ~37 ms of a cold start
whose whole budget is ~30 ms, and the micro bundle's point is to hold nothing but the model and
the standard library. The shapes are kept field for field (level, location, message, timestamp,
service, cold_start, function_*; EMF ``_aws`` with namespace, ``service`` dimension, values in
lists) so log queries and metric filters written for the onnxruntime bundle keep working.
"""

from __future__ import annotations

import json
import os
import sys
import time

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class JsonLogger:
    """Powertools Logger's record shape: one JSON object per line on stdout."""

    def __init__(self, service: str) -> None:
        self.service = service
        level = (os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").upper()
        self.level = LEVELS.get(level, 20)
        self.context: dict = {}

    def bind(self, context, cold_start: bool) -> None:
        """The invocation's fields, added to every record until the next invocation."""
        self.context = {
            "cold_start": cold_start,
            "function_name": getattr(context, "function_name", None),
            "function_memory_size": _int(getattr(context, "memory_limit_in_mb", None)),
            "function_arn": getattr(context, "invoked_function_arn", None),
            "function_request_id": getattr(context, "aws_request_id", None),
        }
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            self.context["xray_trace_id"] = trace.split(";")[0].removeprefix("Root=")

    def info(self, message: str, extra: dict | None = None) -> None:
        self._write("INFO", message, extra)

    def warning(self, message: str, extra: dict | None = None) -> None:
        self._write("WARNING", message, extra)

    def error(self, message: str, extra: dict | None = None) -> None:
        self._write("ERROR", message, extra)

    def _write(self, level: str, message: str, extra: dict | None) -> None:
        if LEVELS[level] < self.level:
            return
        caller = sys._getframe(2)
        now = time.time()
        record = {
            "level": level,
            "location": f"{caller.f_code.co_name}:{caller.f_lineno}",
            "message": message,
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f",{int(now * 1000) % 1000:03d}+0000",
            "service": self.service,
            **self.context,
            **(extra or {}),
        }
        sys.stdout.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


class EmfMetrics:
    """Powertools Metrics' Embedded Metric Format: one JSON line per invocation, CloudWatch reads
    the metrics out of the log."""

    def __init__(self, namespace: str, service: str) -> None:
        self.namespace, self.service = namespace, service

    def flush(self, values: dict[str, tuple[str, float]]) -> None:
        """``values``: metric name -> (unit, value)."""
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{"Namespace": self.namespace, "Dimensions": [["service"]], "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in values.items()]}],
            },
            "service": self.service,
            **{name: [float(value)] for name, (_, value) in values.items()},
        }
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value
