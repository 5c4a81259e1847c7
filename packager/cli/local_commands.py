"""`mpack invoke` and `mpack serve`: the local Lambda platform from the command line."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from mpack.infra.errors import MpackError
from mpack.packager.cli.boundary import error_boundary as _error_boundary
from mpack.packager.cli.boundary import stderr as _stderr
from mpack.packager.cli.options import CACHE_OPTION, ENV_OPTION, HANDLER_OPTION, MEMORY_OPTION, NAME_OPTION, SNAPSTART_OPTION, TIMEOUT_OPTION, BASE_IMAGE_OPTION
from rich.markup import escape


def invoke(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A bundle zip from mpack build, or its unpacked folder."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="The request, e.g. an MLflow scoring JSON document."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Read the request from a file [default: standard input, else the bundle's input example]."),
    event: str = typer.Option("direct", "--event", "-e", help="Wrap the data as: direct, apigw-rest, apigw-http, function-url, alb or sqs (a JSON list: one record each)."),
    event_file: Optional[Path] = typer.Option(None, "--event-file", help="A complete hand-made event (JSON) instead of --data."),
    content_type: str = typer.Option("application/json", "--content-type", help="Content type of HTTP events' body."),
    path: str = typer.Option("/invocations", "--path", help="Request path of HTTP events."),
    memory: int = MEMORY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    env: list[str] = ENV_OPTION,
    handler: Optional[str] = HANDLER_OPTION,
    name: Optional[str] = NAME_OPTION,
    cache_dir: Optional[Path] = CACHE_OPTION,
    snapstart: bool = SNAPSTART_OPTION,
    base_image: Optional[str] = BASE_IMAGE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the raw response payload only (logs and REPORT still go to stderr)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Invoke a bundle once on the local Lambda platform (an azure bundle: the local Functions host),
    print the answer and the REPORT line.

    Exit code 0 only when the function answered and the answer is not an error: a function error,
    timeout, memory kill, init error or refused request exits 1 (so it works as a CI smoke test)."""
    from mpack.packager.cli.local import InvokeInput, RunOptions, answer_failure, event_payload, open_function, read_stdin

    options = RunOptions(bundle, memory, timeout, tuple(env), handler, name, cache_dir, snapstart, base_image)
    given = InvokeInput(data, data_file, event, event_file, content_type, path)
    with _error_boundary(False, debug):  # with --json, stdout holds the payload alone; errors go to stderr
        from mpack.packager.cli.functions_local import is_functions_app

        if is_functions_app(bundle):
            _invoke_functions_app(ctx, options, given, as_json)
            return
        from mpack.infra.local.events import EVENT_KINDS

        if event not in EVENT_KINDS:
            raise MpackError(f"unknown --event {event!r}", f"choose one of {', '.join(EVENT_KINDS)}")
        stdin_text = read_stdin() if data is None and data_file is None and event_file is None else None
        with open_function(options, max_concurrency=1) as function:
            payload = event_payload(given, function.bundle.input_example, stdin_text, lambda text: _stderr.print(f"[dim]{escape(text)}[/dim]"))
            result = function.invoke(payload)
        sys.stderr.write(result.log)
        if as_json:
            sys.stdout.write(result.payload.decode("utf-8", "replace") + "\n")
        else:
            _print_payload(result.payload)
        if result.error_type:
            raise MpackError(f"the function failed: {result.error_type}: {_error_message(result.payload)}", "see the function's log above")
        failure = answer_failure(result.payload, event)
        if failure:
            raise MpackError(f"the function answered with an error: {failure}", "the request does not fit the model's signature; see the message")


def serve(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A bundle zip from mpack build, or its unpacked folder."),
    port: int = typer.Option(3000, "--port", "-p", help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    max_concurrency: int = typer.Option(4, "--max-concurrency", help="Most instances running at once; more requests wait their turn."),
    memory: int = MEMORY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    env: list[str] = ENV_OPTION,
    handler: Optional[str] = HANDLER_OPTION,
    name: Optional[str] = NAME_OPTION,
    cache_dir: Optional[Path] = CACHE_OPTION,
    snapstart: bool = SNAPSTART_OPTION,
    base_image: Optional[str] = BASE_IMAGE_OPTION,
    async_retries: int = typer.Option(2, "--async-retries", help="Retries of a failed Event invocation (0-2), as Lambda's MaximumRetryAttempts."),
    async_retry_delay: float = typer.Option(60.0, "--async-retry-delay", help="Seconds before the first retry (the second waits twice as long), as on Lambda."),
    idle_timeout: float = typer.Option(
        60.0, "--idle-timeout", min=0.001, help="Close a connection that sends no request for this many seconds (from its opening or its last answer), or takes longer to send one."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only REPORT lines, not the function's own logs."),
    alias: list[str] = typer.Option([], "--alias", help="Also answer Invoke API calls qualified by this alias (repeatable), as $LATEST: a client written for a deployed alias runs unchanged."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Serve a bundle locally: the Lambda Invoke API (boto3 works against it) and an HTTP gateway."""
    from mpack.packager.cli.local import RunOptions, open_function, serve_until_stopped

    options = RunOptions(bundle, memory, timeout, tuple(env), handler, name, cache_dir, snapstart, base_image)
    lock = threading.Lock()  # one log block at a time from the pool's threads

    def show(result) -> None:
        with lock:
            sys.stderr.write((result.report + "\n") if quiet else result.log)
            sys.stderr.flush()

    with _error_boundary(False, debug):
        from mpack.packager.cli.functions_local import is_functions_app

        _check_aliases(alias)
        if is_functions_app(bundle):
            if alias:
                raise MpackError("--alias applies to Lambda bundles", "an azure bundle is served by the local Functions host; drop --alias")
            _serve_functions_app(ctx, options, host, port, max_concurrency, quiet, idle_timeout)
            return
        function = open_function(options, max_concurrency, on_result=show)
        config = function.config

        def announce(url: str) -> None:
            _stderr.print(f"mpack serve: [bold]{config.name}[/bold] ({config.handler}), {config.memory_mb} MB, {config.timeout_s:g} s timeout, up to {max_concurrency} instances")
            _stderr.print(f"  Invoke API    {url}/2015-03-31/functions/{config.name}/invocations" + (f" (aliases {', '.join(alias)} = $LATEST)" if alias else ""), soft_wrap=True)
            _stderr.print(f"  HTTP gateway  {url}/invocations", soft_wrap=True)
            _stderr.print("  Ctrl-C to stop")

        def note(text: str) -> None:
            with lock:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()

        serve_until_stopped(function, host, port, announce, async_retries, async_retry_delay, note, idle_timeout, tuple(alias))


ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")  # Lambda's: a number would be a version


def _check_aliases(aliases: list[str]) -> None:
    for name in aliases:
        if not ALIAS_NAME.fullmatch(name) or name == "$LATEST":
            raise MpackError(f"--alias {name!r} is not a Lambda alias name", "1-128 letters, digits, hyphens or underscores, not only digits")


def _given(ctx: typer.Context, name: str, value):
    """A value the user typed, or None when it is the Lambda-oriented default (azure picks its own)."""
    source = ctx.get_parameter_source(name)
    return None if source is None or source.name in ("DEFAULT", "DEFAULT_MAP") else value


def _functions_run(ctx: typer.Context, options, max_instances: int = 1):
    from mpack.packager.cli.functions_local import FunctionsRun

    if options.handler:
        raise MpackError("--handler does not apply to an azure bundle", "the Functions host indexes function_app.py; drop --handler")
    if options.snapstart:
        raise MpackError("--snapstart is a Lambda feature; an azure bundle runs on the Functions host", "drop --snapstart")
    return FunctionsRun(options.bundle, _given(ctx, "memory", options.memory_mb), _given(ctx, "timeout", options.timeout_s), options.environment, options.name, options.cache_dir, max_instances)


def _invoke_functions_app(ctx: typer.Context, options, given, as_json: bool) -> None:
    """One request through the local Functions host: --data (or the input example) to --path."""
    from mpack.infra.functions_host.app_run import send
    from mpack.packager.cli.functions_local import answer_failure, open_host
    from mpack.packager.cli.local import event_payload, read_stdin

    if given.event != "direct" or given.event_file is not None:
        raise MpackError("--event and --event-file are Lambda event sources", "an azure bundle takes HTTP requests: use --data and --path")
    host, manifest = open_host(_functions_run(ctx, options))
    try:
        stdin_text = read_stdin() if given.data is None and given.data_file is None else None
        body = event_payload(given, manifest.get("input_example"), stdin_text, lambda text: _stderr.print(f"[dim]{escape(text)}[/dim]"))
        response = send(host, body, given.path, given.content_type)
    finally:
        host.close()
    sys.stderr.write(response.log)
    if as_json:
        sys.stdout.write(response.body.decode("utf-8", "replace") + "\n")
    else:
        _print_payload(response.body)
    failure = answer_failure(response.status, response.body)
    if failure:
        raise MpackError(f"the function app answered with an error: {failure}", "see the host's log above")


def _serve_functions_app(ctx: typer.Context, options, address: str, port: int, max_concurrency: int, quiet: bool, idle_timeout: float) -> None:
    from mpack.packager.cli.functions_local import route_lines, serve_app

    run = _functions_run(ctx, options, max_instances=max_concurrency)
    lock = threading.Lock()

    def log(text: str) -> None:
        if quiet:
            text = "".join(line + "\n" for line in text.splitlines() if line.startswith("mpack:"))
        with lock:
            sys.stderr.write(text)
            sys.stderr.flush()

    def announce(url: str, host) -> None:
        _stderr.print(
            f"mpack serve: [bold]{host.config.app_name}[/bold] on the local Functions host, {host.config.memory_mb} MB instances, up to {max_concurrency} instances of {host.config.http_concurrency} requests, {host.timeout_s:g} s timeout"
        )
        _stderr.print("Functions:")
        for line in route_lines(url, host):
            _stderr.print(f"  {escape(line)}", soft_wrap=True)
        _stderr.print("Keys (x-functions-key header or ?code=):")
        _stderr.print(f"  master   {host.keys.master}", soft_wrap=True)
        _stderr.print(f"  default  {host.keys.host_default}", soft_wrap=True)
        _stderr.print("  Ctrl-C to stop")

    serve_app(run, address, port, announce, log, idle_timeout)


def _print_payload(payload: bytes) -> None:
    try:
        print(json.dumps(json.loads(payload), indent=2))
    except ValueError:
        print(payload.decode("utf-8", "replace"))


def _error_message(payload: bytes) -> str:
    try:
        body = json.loads(payload)
        return str(body.get("errorMessage", body))[:500]
    except (ValueError, AttributeError):
        return payload.decode("utf-8", "replace")[:500]
