"""Run a finished azure bundle the way Azure will, before anyone deploys it: unpacked, started by the
local Functions host in its own worker process (only the app's folders on its path), asked for the
input example through ``POST /api/invocations`` with a function key, inside the instance memory
the build was given. A module missing from ``.python_packages`` fails the build here."""

from __future__ import annotations

import json
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.infra.functions_host.app_config import INSTANCE_MEMORY_MB
from mpack.infra.functions_host.app_run import send, started_zip
from mpack.packager.check.verify import Verification, agreement, predictions_of


def verify_functions_app(bundle: Path, request: dict, expected, tolerance: float, forbidden: tuple[str, ...]) -> Verification:
    with started_zip(bundle, "mpack-verify", timeout_s=120) as (host, failed):
        if failed is not None:
            raise MpackError(f"the built app fails to start on the local Functions host: {failed.error}", _memory_hint(failed.error, host.config.memory_mb))
        answer = send(host, json.dumps(request).encode())
        if answer.status >= 500 and not answer.body:
            raise MpackError(f"the built app failed on the input example: {answer.log.strip()[-600:]}", "rerun with --debug, or report this with the output of --json")
        try:
            document = json.loads(answer.body)
        except ValueError:
            document = answer.body.decode("utf-8", "replace")
        predictions = predictions_of(document, "the built app", "check the model's input example against its signature")
        loaded = [m for m in forbidden if m in host.app_modules()]
        init_seconds = (answer.cold_start_ms or 0.0) / 1000
    if loaded:
        raise MpackError(f"the app imported {', '.join(loaded)} at run time", "this is an mpack bug: the runtime must stay light")
    diff = agreement(predictions, expected, tolerance, "the app's answer", "the runtime's onnxruntime version computes differently; try another --python")
    return Verification(True, "ok", round(init_seconds, 4), diff)


def _memory_hint(error: str, memory: int) -> str:
    if "instance memory" in error:
        bigger = [size for size in INSTANCE_MEMORY_MB if size > memory]
        return (
            f"build with --instance-memory {bigger[0]} (and deploy to instances that size)"
            if bigger
            else "the model does not fit Flex Consumption's largest instance (4,096 MB): use --target container"
        )
    return "a module it needs is missing or broken; rerun with --debug"
