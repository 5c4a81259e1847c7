"""Verifying a Lambda zip built for another Python (or architecture) than this machine's: run on
the local Lambda platform inside a container of that Python (infra/local/python_container.py),
under the real runtime interface client, answering the input example.

Without Docker or the image, the verification is skipped and the notice says what to build; a
container run cannot list the modules the bundle imported (the onnxruntime/numpy guard of
verify_bundle runs only in this machine's own interpreter).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.check.verify import Verification, agreement, predictions_of


def container_unavailable(python: str, arch: str, image: str | None = None) -> str | None:
    """Why a container of that Python cannot run here (None: it can)."""
    from mpack.infra.local.python_container import container_image

    try:
        container_image(python, arch, image)
    except MpackError as error:
        return f"{error.message} ({error.hint})"
    return None


def verify_in_container(bundle_zip: Path, request: dict, expected, tolerance: float, cache: Path, image: str | None = None) -> Verification:
    from mpack.infra.local.local_bundle import foreign_runtime, open_bundle
    from mpack.infra.local.local_lambda import LocalLambda, function_config
    from mpack.infra.local.python_container import foreign_launcher

    with tempfile.TemporaryDirectory(prefix="mpack-verify-") as folder:
        bundle = open_bundle(bundle_zip, Path(folder), other_python_ok=True)
        python, arch = foreign_runtime(bundle.manifest) or ("?", "?")
        launcher = foreign_launcher(bundle_zip, bundle, cache, image)
        config = function_config(bundle, name="mpack-verify", handler=None, memory_mb=1769, timeout_s=120)
        with LocalLambda(bundle, config, cache, launcher=launcher) as function:
            result = function.invoke(json.dumps(request).encode())
    where = f"the bundle in a Python {python} {arch} container ({launcher.image})"
    if result.error_type:
        raise MpackError(f"{where} failed: {result.error_type}: {result.payload[:300].decode('utf-8', 'replace')}", "a module it needs is missing or broken for that Python; rerun with --debug")
    predictions = predictions_of(json.loads(result.payload), where, "check the model's input example against its signature")
    diff = agreement(predictions, expected, tolerance, f"{where}'s answer", "the runtime's libraries compute differently on that Python")
    return Verification(True, f"ok, in a Python {python} container", round((result.init_duration_ms or 0) / 1000, 4), diff)
