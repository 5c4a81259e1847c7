"""What the local Functions host reads before it starts an app: host.json (route prefix, function
timeout) and the instance settings the plan decides (memory, per-instance HTTP concurrency)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.errors import MpackError

HTTP_RESPONSE_LIMIT_S = 230  # Azure's front end gives up on an HTTP answer after 230 s (a 502)
MAX_REQUEST_BYTES = 210 * 1024 * 1024  # the host's own request size limit
INIT_LIMIT_S = 120.0  # how long a worker may take to import and index the app locally
INSTANCE_MEMORY_MB = (512, 2048, 4096)  # Flex Consumption's instance sizes
DEFAULT_INSTANCE_MEMORY_MB = 2048  # Flex Consumption's default size, and --instance-memory's
DEFAULT_HTTP_CONCURRENCY = 16  # Flex Consumption's default HTTP concurrency per instance (Python)
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")


@dataclass(frozen=True)
class HostConfig:
    app_name: str
    memory_mb: int = DEFAULT_INSTANCE_MEMORY_MB
    timeout_s: float | None = None  # None: host.json's functionTimeout
    http_concurrency: int = DEFAULT_HTTP_CONCURRENCY
    max_instances: int = 1
    environment: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        if not 128 <= self.memory_mb <= 14336:
            raise MpackError(f"--memory {self.memory_mb} MB is not an instance size Azure offers", f"Flex Consumption instances have {', '.join(map(str, INSTANCE_MEMORY_MB))} MB")
        if self.timeout_s is not None and not 0 < self.timeout_s <= 3600:
            raise MpackError(f"--timeout {self.timeout_s:g} is out of range", "use seconds between 1 and 3600 (HTTP answers are cut at 230 s anyway)")
        if self.http_concurrency < 1 or self.max_instances < 1:
            raise MpackError("concurrency and instance counts must be at least 1", "use --max-concurrency 1 or more")


def instance_memory_mb(manifest: dict) -> int:
    """The instance memory an azure bundle was built and verified for (its manifest's build options)."""
    return int(manifest.get("build", {}).get("instance_memory_mb") or DEFAULT_INSTANCE_MEMORY_MB)


@dataclass(frozen=True)
class HostJson:
    route_prefix: str
    function_timeout_s: float | None  # None: unbounded ("-1")


def read_host_json(app_root: Path) -> HostJson:
    path = app_root / "host.json"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise MpackError(f"{path} is missing: this is not a Functions app", "build one with mpack build --target azure") from None
    except ValueError as exc:
        raise MpackError(f"{path} is not valid JSON: {exc}", "rebuild the bundle with mpack build --target azure") from None
    if not isinstance(document, dict) or str(document.get("version")) != "2.0":
        raise MpackError(f"{path} is not a version 2.0 host.json", "the Functions host (v4) reads host.json version 2.0")
    http = (document.get("extensions") or {}).get("http") or {}
    prefix = http.get("routePrefix", "api")
    return HostJson(prefix if isinstance(prefix, str) else "api", parse_timespan(document.get("functionTimeout"), path))


def parse_timespan(value, where: Path) -> float | None:
    """host.json's ``functionTimeout`` ("00:05:00", "1.00:00:00", "-1" for unbounded) in seconds."""
    if value is None:
        return 30 * 60  # Flex Consumption's default
    if str(value).strip() == "-1":
        return None
    found = _TIMESPAN.match(str(value).strip())
    if not found:
        raise MpackError(f"{where}: functionTimeout {value!r} is not a timespan", "write it as hh:mm:ss, e.g. 00:05:00")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def worker_environment(config: HostConfig, app_root: Path, scratch: Path) -> dict[str, str]:
    """What Azure's Linux Python worker sees (the app settings a Functions app always has), plus
    --env; nothing of this machine's own environment leaks in."""
    base = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "FUNCTIONS_EXTENSION_VERSION": "~4",
        "AzureWebJobsScriptRoot": str(app_root),
        "WEBSITE_SITE_NAME": config.app_name,
        "WEBSITE_INSTANCE_ID": os.urandom(16).hex(),
        "WEBSITE_MEMORY_LIMIT_MB": str(config.memory_mb),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return {**base, **config.environment}
