"""A Lambda version's own figures behind an alias, from CloudWatch: invocations, errors and p99 duration of the
requests the alias sent to that version (Lambda's ``ExecutedVersion`` dimension) over a time window.

p99 is CloudWatch's percentile statistic; where the service gives none (an emulator without percentiles), the
maximum stands in — it bounds the p99 from above, so a gate on it is stricter, never looser — and says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mpack.infra.aws.session import Aws, aws_error

PERIOD_S = 60


@dataclass(frozen=True)
class VersionMetrics:
    version: str
    invocations: float
    errors: float
    p99_ms: float | None
    p99_source: str  # "p99" | "maximum (no percentile reported)" | "no requests"

    @property
    def error_rate(self) -> float:
        """Percent of invocations that failed."""
        return 100.0 * self.errors / self.invocations if self.invocations else 0.0


def version_metrics(aws: Aws, function: str, alias: str, version: str, since: float, until: float) -> VersionMetrics:
    dimensions = [{"Name": "FunctionName", "Value": function}, {"Name": "Resource", "Value": f"{function}:{alias}"}, {"Name": "ExecutedVersion", "Value": version}]
    clients = {"counts": aws.client("cloudwatch"), "percentile": aws.client("cloudwatch", retries={"max_attempts": 1})}  # a service without percentiles is not asked 8 times
    window = {"StartTime": datetime.fromtimestamp(since, UTC), "EndTime": datetime.fromtimestamp(until, UTC)}

    def query(statistics: dict, client) -> dict:
        queries = [
            {"Id": key, "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": dimensions}, "Period": PERIOD_S, "Stat": stat}, "ReturnData": True}
            for key, (metric, stat) in statistics.items()
        ]
        answer = client.get_metric_data(MetricDataQueries=queries, **window)
        return {result["Id"]: [v for v in result.get("Values", []) if v is not None] for result in answer.get("MetricDataResults", [])}

    try:
        values = query({"invocations": ("Invocations", "Sum"), "errors": ("Errors", "Sum"), "maximum": ("Duration", "Maximum")}, clients["counts"])
    except Exception as exc:  # noqa: BLE001 - translated with context
        raise aws_error(exc, f"read the CloudWatch metrics of {function} version {version}") from None
    invocations, errors = sum(values.get("invocations", [])), sum(values.get("errors", []))
    if not invocations:
        return VersionMetrics(version, 0.0, errors, None, "no requests")
    try:
        p99 = query({"p99": ("Duration", "p99")}, clients["percentile"]).get("p99")
    except Exception:  # noqa: BLE001 - a service without percentiles (an emulator): the maximum stands in, said so
        p99 = None
    if p99:
        return VersionMetrics(version, invocations, errors, max(p99), "p99")  # the worst minute's p99
    maximum = max(values["maximum"]) if values.get("maximum") else None
    return VersionMetrics(version, invocations, errors, maximum, "maximum: no percentile reported")
