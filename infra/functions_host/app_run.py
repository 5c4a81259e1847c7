"""One request to an azure bundle on the local Functions host, for the callers that need a single
answer from the very zip (the build's verification, the deploy's smoke test, ``mpack invoke``): the
zip unpacked to a temporary folder, the app started in the instance memory it was built for, and
the request sent with the master key (these callers stand in for the platform, not for a client)."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mpack.handlers.manifest import MANIFEST_NAME, Manifest
from mpack.infra.functions_host.app_config import HostConfig, instance_memory_mb
from mpack.infra.functions_host.host import FunctionsHost, HostRequest, HostResponse
from mpack.infra.functions_host.worker_process import InitFailed

SCORING_ROUTE = "/api/invocations"


@contextmanager
def started_zip(bundle: Path, name: str, timeout_s: float | None = None) -> Iterator[tuple[FunctionsHost, InitFailed | None]]:
    """(the host, why the app failed to start or None), with the app unpacked for the duration."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as folder:
        root = Path(folder)
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(root)
        manifest = Manifest.from_bytes((root / MANIFEST_NAME).read_bytes(), f"{bundle}:{MANIFEST_NAME}").served()
        host = FunctionsHost(root, HostConfig(name, memory_mb=instance_memory_mb(manifest), timeout_s=timeout_s))
        try:
            yield host, host.start()
        finally:
            host.close()


def send(host: FunctionsHost, body: bytes, path: str = SCORING_ROUTE, content_type: str = "application/json", method: str = "POST") -> HostResponse:
    """One request with the master key; ``path`` may leave out the host's route prefix."""
    prefix = "/" + host.host_json.route_prefix.strip("/") if host.host_json.route_prefix.strip("/") else ""
    route = path if not prefix or path == prefix or path.startswith(prefix + "/") else prefix + "/" + path.lstrip("/")
    headers = {"content-type": content_type, "x-functions-key": host.keys.master}
    return host.handle(HostRequest(method, route, {}, headers, body, url=f"http://localhost{route}"))
