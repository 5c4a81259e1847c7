"""The figures of a function app (or its canary slot) over a time window, from Azure Monitor's platform metrics:
``Requests`` and ``Http5xx`` (totals) and ``HttpResponseTime`` (one-minute averages).

Azure Monitor's platform metrics have no percentile: a p99 needs Application Insights, which mpack does not read.
So ``p99_ms`` stays None and ``p99_source`` says it was not measured; the average is reported, never used as a p99
(it lies below the p99: a gate judged on it would be looser than asked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mpack.infra.azure.session import AzureSession, azure_call, sdk

API_VERSION = "2023-10-01"
METRICS = ("Requests", "Http5xx", "HttpResponseTime")
NOT_MEASURED = "not measured: Azure Monitor's platform metrics have no percentile (Application Insights is not read)"


@dataclass(frozen=True)
class AppMetrics:
    where: str  # "production" | "slot staging"
    invocations: float
    errors: float  # HTTP 5xx answers
    average_ms: float | None  # the worst one-minute average response time
    p99_ms: float | None = None
    p99_source: str = NOT_MEASURED

    @property
    def error_rate(self) -> float:
        """Percent of requests answered with a 5xx."""
        return 100.0 * self.errors / self.invocations if self.invocations else 0.0


def app_metrics(session: AzureSession, slot: str | None, since: float, until: float) -> AppMetrics:
    HttpRequest = sdk("azure.core.rest").HttpRequest
    target = session.target
    resource = f"/subscriptions/{target.subscription}/resourceGroups/{target.resource_group}/providers/Microsoft.Web/sites/{target.app}" + (f"/slots/{slot}" if slot else "")
    timespan = f"{_iso(since)}/{_iso(max(until, since + 60))}"
    query = f"api-version={API_VERSION}&metricnames={','.join(METRICS)}&timespan={timespan}&interval=PT1M&aggregation=Total,Average"
    where = f"slot {slot}" if slot else "production"
    with azure_call(f"read Azure Monitor's metrics of {target.app} ({where})"):
        response = session.web.send_request(HttpRequest("GET", f"{resource}/providers/Microsoft.Insights/metrics?{query}"))
        response.raise_for_status()
        document = response.json()
    points = {item["name"]["value"]: [p for series in item.get("timeseries") or [] for p in series.get("data") or []] for item in document.get("value") or []}
    averages = [p["average"] for p in points.get("HttpResponseTime", []) if p.get("average") is not None]
    return AppMetrics(
        where,
        invocations=sum(p.get("total") or 0 for p in points.get("Requests", [])),
        errors=sum(p.get("total") or 0 for p in points.get("Http5xx", [])),
        average_ms=max(averages) * 1000 if averages else None,  # HttpResponseTime is in seconds
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
