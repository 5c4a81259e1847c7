"""The gate before an alias moves: the published version answers the model's input example with
one prediction per row. ``aws`` invokes that version on Lambda; ``local`` runs the very zip being
deployed on mpack's local Lambda platform with the function's memory, timeout and environment (for
CI runners that may not invoke the function, and for tests against AWS emulators that cannot run code).
"""

from __future__ import annotations

import json

from mpack.infra.aws.function_state import DesiredFunction
from mpack.infra.aws.session import Aws, aws_error
from mpack.infra.errors import SmokeTestFailed

SMOKE_MODES = ("aws", "local", "none")


def check_answer(payload: bytes, function_error: str | None, desired: DesiredFunction, where: str) -> str:
    rows = _rows(desired.input_example)
    try:
        answer = json.loads(payload)
    except ValueError:
        raise SmokeTestFailed(f"the smoke test failed: {where} answered with non-JSON {payload[:200]!r}", "the alias was not moved") from None
    if function_error or not isinstance(answer, dict) or "predictions" not in answer:
        raise SmokeTestFailed(f"the smoke test failed: {where} answered {json.dumps(answer)[:300]}", "the alias was not moved; fix the bundle and deploy again")
    predictions = answer["predictions"]
    count = len(predictions) if isinstance(predictions, list) else len(next(iter(predictions.values()), []))
    if rows is not None and count != rows:
        raise SmokeTestFailed(f"the smoke test failed: {where} answered {count} predictions for {rows} rows", "the alias was not moved")
    return f"{count} predictions for the input example"


def aws_smoke(aws: Aws, desired: DesiredFunction):
    def run(version: str) -> str:
        try:
            answer = aws.lambda_.invoke(FunctionName=desired.name, Qualifier=version, Payload=json.dumps(desired.input_example).encode())
        except Exception as exc:  # noqa: BLE001
            raise aws_error(exc, f"invoke version {version} for the smoke test") from None
        return check_answer(answer["Payload"].read(), answer.get("FunctionError"), desired, f"version {version}")

    return run


def local_smoke(desired: DesiredFunction, cache_root):
    def run(version: str) -> str:
        from mpack.infra.local.function_config import FunctionConfig
        from mpack.infra.local.local_lambda import LocalLambda, open_bundle

        launcher = None
        if desired.image:  # the very image, in a container on the local platform
            from mpack.infra.docker_engine import connect
            from mpack.infra.local.container_launcher import ContainerLauncher
            from mpack.infra.local.local_bundle import open_image

            client = connect()
            bundle = open_image(desired.image.local, client)
            launcher = ContainerLauncher(client, desired.image.local)
        else:
            bundle = open_bundle(desired.zip_path, cache_root)
        config = FunctionConfig(name=desired.name, handler=desired.handler, memory_mb=desired.memory_mb, timeout_s=desired.timeout_s, environment=tuple(desired.environment.items()))
        with LocalLambda(bundle, config, cache_root, launcher=launcher) as function:
            result = function.invoke(json.dumps(desired.input_example).encode())
        return check_answer(result.payload, result.error_type, desired, f"the bundle of version {version} (local platform)") + " (local platform)"

    return run


def no_smoke(version: str) -> str:
    return "skipped (--smoke-test none)"


def _rows(example: dict) -> int | None:
    for key in ("dataframe_split",):
        if key in example:
            return len(example[key].get("data", []))
    for key in ("dataframe_records", "instances"):
        if isinstance(example.get(key), list):
            return len(example[key])
    return None
