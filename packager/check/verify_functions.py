"""Run a finished azure bundle the way Azure will, before anyone deploys it: unpacked, started by the
local Functions host in its own worker process (only the app's folders on its path), asked for the
input example through ``POST /api/invocations`` with a function key, inside the instance memory
the build was given. A module missing from ``.python_packages`` fails the build here."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from mpack.handlers.manifest import MANIFEST_NAME
from mpack.infra.errors import MpackError
from mpack.infra.functions_host.app_config import HostConfig
from mpack.infra.functions_host.host import FunctionsHost, HostRequest
from mpack.packager.check.verify import Verification, agreement, predictions_of


def verify_functions_app(bundle: Path, request: dict, expected, tolerance: float, forbidden: tuple[str, ...]) -> Verification:
    with tempfile.TemporaryDirectory(prefix="mpack-verify-azure-") as folder:
        root = Path(folder)
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(root)
        build = json.loads((root / MANIFEST_NAME).read_bytes()).get("build", {})
        memory = int(build.get("instance_memory_mb") or 2048)
        host = FunctionsHost(root, HostConfig("mpack-verify", memory_mb=memory, timeout_s=120))
        try:
            failed = host.start()
            if failed is not None:
                raise MpackError(f"the built app fails to start on the local Functions host: {failed.error}", _memory_hint(failed.error, memory))
            body = json.dumps(request).encode()
            headers = {"content-type": "application/json", "x-functions-key": host.keys.master}
            answer = host.handle(HostRequest("POST", "/api/invocations", {}, headers, body))
            if answer.status >= 500 and not answer.body:
                raise MpackError(f"the built app failed on the input example: {answer.log.strip()[-600:]}", "rerun with --debug, or report this with the output of --json")
            try:
                document = json.loads(answer.body)
            except ValueError:
                document = answer.body.decode("utf-8", "replace")
            predictions = predictions_of(document, "the built app", "check the model's input example against its signature")
            loaded = [m for m in forbidden if m in host.app_modules()]
            init_seconds = (answer.cold_start_ms or 0.0) / 1000
        finally:
            host.close()
    if loaded:
        raise MpackError(f"the app imported {', '.join(loaded)} at run time", "this is an mpack bug: the runtime must stay light")
    diff = agreement(predictions, expected, tolerance, "the app's answer", "the runtime's onnxruntime version computes differently; try another --python")
    return Verification(True, "ok", round(init_seconds, 4), diff)


def _memory_hint(error: str, memory: int) -> str:
    if "instance memory" in error:
        bigger = [size for size in (2048, 4096) if size > memory]
        return f"build with --instance-memory {bigger[0]} (and deploy to instances that size)" if bigger else "the model does not fit Flex Consumption's largest instance (4,096 MB): use --target container"
    return "a module it needs is missing or broken; rerun with --debug"
