"""``mpack invoke`` and ``mpack serve``: what the user passes, turned into the local platform's calls,
and the answer judged the way a CI smoke test needs (a failed or refused prediction is a failure).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.errors import MpackError


@dataclass(frozen=True)
class RunOptions:
    bundle: Path
    memory_mb: int = 1024
    timeout_s: float = 3.0
    environment: tuple[str, ...] = ()
    handler: str | None = None
    name: str | None = None
    cache_dir: Path | None = None
    snapstart: bool = False
    base_image: str | None = None  # a bundle of another Python: the image of that Python


@dataclass(frozen=True)
class InvokeInput:
    data: str | None = None
    data_file: Path | None = None
    event: str = "direct"
    event_file: Path | None = None
    content_type: str = "application/json"
    path: str = "/invocations"


def open_function(options: RunOptions, max_concurrency: int, on_result=None):
    from mpack.infra.local.function_config import parse_environment
    from mpack.infra.local.local_lambda import LocalLambda, function_config, open_bundle
    from mpack.packager.bundle.dependencies import default_cache_dir

    cache = options.cache_dir or default_cache_dir()
    launcher = None
    if options.bundle.exists() or str(options.bundle).endswith(".zip"):
        bundle = open_bundle(options.bundle, cache, other_python_ok=True)
        launcher = other_python_launcher(bundle, options, cache)
    else:  # not a file: a Lambda image, run in containers
        from mpack.infra.docker_engine import connect
        from mpack.infra.local.container_launcher import ContainerLauncher
        from mpack.infra.local.local_bundle import open_image

        reference = str(options.bundle)
        try:
            client = connect()
        except MpackError as error:
            raise MpackError(f"{reference} is not a file, and no Docker engine answers to look for an image of that name", error.hint) from None
        bundle = open_image(reference, client)
        launcher = ContainerLauncher(client, reference)
    config = function_config(
        bundle,
        name=options.name,
        handler=options.handler,
        memory_mb=options.memory_mb,
        timeout_s=options.timeout_s,
        environment=parse_environment(list(options.environment)),
        snapstart=options.snapstart,
    )
    return LocalLambda(bundle, config, cache, max_concurrency=max_concurrency, launcher=launcher, on_result=on_result)


def other_python_launcher(bundle, options: RunOptions, cache: Path):
    """A zip for another Python or architecture than this machine's runs in a container of that
    Python; None for this machine's own."""
    from mpack.infra.local.python_container import foreign_launcher

    return foreign_launcher(options.bundle, bundle, cache, options.base_image)


def event_payload(given: InvokeInput, input_example: dict | None, stdin_text: str | None, notice) -> bytes:
    """The event to deliver: a hand-made event file, or the data wrapped for the chosen source."""
    from mpack.infra.local.events import wrap_event

    if given.event_file is not None:
        if given.data is not None or given.data_file is not None:
            raise MpackError("--event-file is a whole event: it cannot be combined with --data or --data-file", "put the data inside the event file, or use --event with --data")
        return _read_json_file(given.event_file, "--event-file").encode()
    if given.data is not None and given.data_file is not None:
        raise MpackError("both --data and --data-file were given", "pass the request one way")
    if given.data is not None:
        text, where = given.data, "--data"
    elif given.data_file is not None:
        text, where = _read_text(given.data_file, "--data-file"), f"--data-file {given.data_file}"
    elif stdin_text and stdin_text.strip():
        text, where = stdin_text, "standard input"
    elif input_example is not None:
        notice("no --data given: invoking with the bundle's input example")
        text, where = json.dumps(input_example), "the input example"
    else:
        raise MpackError("no request to send", "pass --data JSON, --data-file FILE, or pipe it on standard input")
    is_json = given.content_type.split(";")[0].strip().lower().endswith("json")
    body = _parse_json(text, where) if is_json or given.event in ("direct", "sqs") else text
    if given.event == "direct":
        return text.encode() if is_json else json.dumps(body).encode()
    return json.dumps(wrap_event(given.event, body, path=given.path, content_type=given.content_type)).encode()


def answer_failure(payload: bytes, event: str) -> str | None:
    """Why an answer that the function returned normally is still a failed prediction, or None."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    if "error_code" in answer:
        return f"{answer['error_code']}: {answer.get('message', '')}"
    if event == "sqs" and answer.get("batchItemFailures"):
        return f"{len(answer['batchItemFailures'])} SQS record(s) failed"
    status = answer.get("statusCode")
    if isinstance(status, int) and status >= 400:
        body = answer.get("body") or ""
        return f"HTTP {status}: {body[:300]}"
    return None


def serve_until_stopped(function, host: str, port: int, announce, async_retries: int = 2, async_retry_delay_s: float = 60.0, log=None, idle_timeout_s: float = 60.0, aliases: tuple[str, ...] = ()) -> None:
    """Serve until SIGINT or SIGTERM, then stop every instance."""
    from mpack.infra.local.local_server import LocalServer

    if not 0 <= async_retries <= 2:
        function.close()
        raise MpackError(f"--async-retries {async_retries} is outside Lambda's 0-2", "use 0, 1 or 2 (Lambda's default is 2)")
    if not 0 <= port <= 65535:
        function.close()
        raise MpackError(f"--port {port} is not a TCP port", "use a number from 1 to 65535 (0: any free port)")
    try:
        server = LocalServer(function, host, port, async_retries, async_retry_delay_s, log, idle_timeout_s, aliases)
    except (OSError, OverflowError) as exc:
        function.close()
        raise MpackError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}", "pick another --port, or stop what is using it") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        announce(server.url)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()


def read_stdin() -> str | None:
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.read()


def _read_text(path: Path, flag: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise MpackError(f"{flag} {path} does not exist", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MpackError(f"{flag} {path} cannot be read: {exc}", "pass a UTF-8 text file") from None


def _read_json_file(path: Path, flag: str) -> str:
    text = _read_text(path, flag)
    _parse_json(text, f"{flag} {path}")
    return text


def _parse_json(text: str, where: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise MpackError(f"{where} is nested too deeply to be a scoring request", 'a request is a few levels deep: {"dataframe_split": {"columns": [...], "data": [[...]]}}') from None
    except ValueError as exc:
        raise MpackError(f"{where} is not valid JSON: {exc}", 'a request looks like {"dataframe_split": {"columns": [...], "data": [[...]]}}') from None
