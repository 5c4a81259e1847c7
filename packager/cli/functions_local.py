"""``mpack invoke`` / ``mpack serve`` on an azure bundle: the local Functions host instead of the
local Lambda platform (chosen by the bundle's manifest), with the same judging of answers."""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.errors import MpackError


@dataclass(frozen=True)
class FunctionsRun:
    bundle: Path
    memory_mb: int | None  # None: the instance memory the bundle was built for
    timeout_s: float | None  # None: host.json's functionTimeout
    environment: tuple[str, ...] = ()
    name: str | None = None
    cache_dir: Path | None = None
    max_instances: int = 1
    http_concurrency: int = 16


def is_functions_app(bundle: Path) -> bool:
    """Whether ``bundle`` (a zip or folder) is an azure bundle mpack built."""
    from mpack.infra.local.local_bundle import bundle_target

    return bundle_target(bundle) == "azure"


def open_host(run: FunctionsRun):
    """The host for the bundle, unpacked read-only into the cache as the Lambda platform does, and
    the bundle's manifest."""
    from mpack.infra.functions_host.app_config import HostConfig, instance_memory_mb
    from mpack.infra.functions_host.host import FunctionsHost
    from mpack.infra.local.function_config import parse_environment
    from mpack.infra.local.local_bundle import open_bundle
    from mpack.packager.bundle.dependencies import default_cache_dir

    bundle = open_bundle(run.bundle, run.cache_dir or default_cache_dir())
    manifest = bundle.manifest or {}
    memory = run.memory_mb or instance_memory_mb(manifest)
    name = run.name or f"mpack-{manifest.get('model', {}).get('name', 'app')}"
    config = HostConfig(name, memory, run.timeout_s, run.http_concurrency, run.max_instances, dict(parse_environment(list(run.environment))))
    return FunctionsHost(bundle.task_root, config), manifest


def answer_failure(status: int, body: bytes) -> str | None:
    if status < 400:
        return None
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
        if isinstance(document, dict):
            text = document.get("message") or document.get("error") or text
    except ValueError:
        pass
    return f"HTTP {status}: {text[:500]}" if text else f"HTTP {status}"


def serve_app(run: FunctionsRun, address: str, port: int, announce, log, idle_timeout_s: float = 60.0) -> None:
    """Serve until SIGINT or SIGTERM; the app is started (and indexed) before the routes are shown."""
    from mpack.infra.functions_host.http_front import FunctionsHttpServer

    if not 0 <= port <= 65535:
        raise MpackError(f"--port {port} is not a TCP port", "use a number from 1 to 65535 (0: any free port)")
    host, manifest = open_host(run)
    try:
        failed = host.start()
        if failed is not None:
            raise MpackError(f"the function app failed to start: {failed.error}", "see the traceback with --debug; rebuild the bundle with mpack build --target azure")
        try:
            server = FunctionsHttpServer(host, address, port, log, idle_timeout_s)
        except (OSError, OverflowError) as exc:
            raise MpackError(f"cannot listen on {address}:{port}: {getattr(exc, 'strerror', None) or exc}", "pick another --port, or stop what is using it") from None
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            announce(server.url, host)
            stop.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.close()
    finally:
        host.close()


def route_lines(url: str, host) -> list[str]:
    """The functions and their URLs, as Core Tools lists them at start."""
    from mpack.infra.functions_host.routes import route_table

    lines = []
    for route in route_table(host.host_json.route_prefix, host.functions or []):
        function = route.function
        methods = ",".join(function.get("methods") or ["ALL"])
        template = "/".join(p for p in (host.host_json.route_prefix, function.get("route") or function["name"]) if p)
        lines.append(f"{function['name']}: [{methods}] {url}/{template}  (auth: {function['auth_level']})")
    return lines
