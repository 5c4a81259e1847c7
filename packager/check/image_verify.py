"""Run a freshly built HTTP image the way a platform will, before anyone deploys it: start it with
its port published on 127.0.0.1, wait for /ping, answer the input example, stop it with SIGTERM."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from mpack.infra.errors import MpackError
from mpack.packager.check.verify import Verification, agreement, predictions_of

START_TIMEOUT_S = 60
IMAGE_DIFFERS = "the image's onnxruntime computes differently; report this with --json output"


def verify_http_image(client, tag: str, port: int, request: dict, expected, tolerance: float, environment: dict | None = None) -> Verification:
    started = time.perf_counter()
    container = client.containers.run(tag, detach=True, ports={f"{port}/tcp": ("127.0.0.1", None)}, environment=environment or {})
    try:
        url = published_url(container, port)
        answer = first_answer(container, url, request)
        start_to_answer = time.perf_counter() - started
    finally:
        container.stop(timeout=10)
        logs = container.logs(tail=20).decode("utf-8", "replace")
        container.remove(force=True)
    predictions = predictions_of(answer, "the built image", f"its log ends with: {logs[-500:]}")
    diff = agreement(predictions, expected, tolerance, "the image's answer", IMAGE_DIFFERS)
    return Verification(True, "ok", round(start_to_answer, 4), diff)


def published_url(container, port: int) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
        if bindings:
            return f"http://127.0.0.1:{bindings[0]['HostPort']}"
        if container.status == "exited":
            break
        time.sleep(0.05)
    raise MpackError(f"the image exited before serving: {container.logs(tail=20).decode('utf-8', 'replace')[-500:]}", "run it with docker run to see why")


def first_answer(container, url: str, request: dict):
    deadline = time.monotonic() + START_TIMEOUT_S
    body = json.dumps(request).encode()
    while time.monotonic() < deadline:
        try:
            post = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(post, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, OSError):
            container.reload()
            if container.status == "exited":
                raise MpackError(f"the image exited at start: {container.logs(tail=20).decode('utf-8', 'replace')[-800:]}", "a module is missing or the model failed to load") from None
            time.sleep(0.05)
    raise MpackError(f"the image did not answer within {START_TIMEOUT_S} s", "run it with docker run to see where it hangs")


def verify_lambda_image(client, tag: str, manifest: dict, request: dict, expected, tolerance: float) -> Verification:
    """Invoke the Lambda image once on the local Lambda platform (its runtime client in a container)."""
    from mpack.infra.local.container_launcher import ContainerLauncher
    from mpack.infra.local.function_config import FunctionConfig, function_name_for
    from mpack.infra.local.local_bundle import open_image
    from mpack.infra.local.local_lambda import LocalLambda
    from mpack.packager.bundle.dependencies import default_cache_dir

    bundle = open_image(tag, client)
    config = FunctionConfig(name=function_name_for(manifest["model"]["name"]), handler=manifest["handler"], memory_mb=1024, timeout_s=30)
    with LocalLambda(bundle, config, default_cache_dir(), launcher=ContainerLauncher(client, tag)) as function:
        result = function.invoke(json.dumps(request).encode())
    if result.error_type:
        raise MpackError(f"the Lambda image failed on the input example: {result.error_type}: {result.payload.decode('utf-8', 'replace')[:300]}", f"its log: {result.log[-600:]}")
    predictions = predictions_of(json.loads(result.payload), "the Lambda image", "check the model's input example against its signature")
    diff = agreement(predictions, expected, tolerance, "the image's answer", IMAGE_DIFFERS)
    return Verification(True, "ok", round((result.init_duration_ms or 0) / 1000, 4), diff)
