"""The `mpack` command line. One error boundary: MpackError becomes `error:`/`hint:` lines and
exit code 1 (2 for usage errors, from click); tracebacks only with --debug."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from mpack.infra.errors import MpackError
from rich.console import Console
from rich.markup import escape

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Package ML models as small, fast serverless bundles.")
_stderr = Console(stderr=True, highlight=False)


@app.callback()
def _root() -> None:
    """mpack: MLflow models to AWS Lambda (and more), tested locally before they ship."""


@app.command()
def build(
    model: str = typer.Option(..., "--model", "-m", help="models:/NAME@ALIAS, models:/NAME/VERSION|STAGE, runs:/RUN_ID/PATH, a model folder or a .onnx file."),
    target: str = typer.Option("lambda", "--target", "-t", help="What to build: lambda (zip) or container (HTTP image)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the bundle [default: dist/<model>-<version>-<target>.zip]."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking store."),
    registry_uri: Optional[str] = typer.Option(None, "--registry-uri", envvar="MLFLOW_REGISTRY_URI", help="MLflow model registry [default: the tracking store]."),
    python: Optional[str] = typer.Option(None, "--python", help="Target Python: 3.11, 3.12 or 3.13 [default: this interpreter's]."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Target architecture: x86_64 or arm64 [default: this machine's]."),
    tolerance: float = typer.Option(1e-5, "--tolerance", help="Largest accepted difference between the original and the converted model."),
    sample_data: Optional[Path] = typer.Option(None, "--sample-data", help="CSV or JSON rows for the parity check [default: the model's input example]."),
    lambda_http: str = typer.Option("native", "--lambda-http", help="HTTP events: native (fastest) or asgi (through Mangum, same app as containers)."),
    trust_type: list[str] = typer.Option([], "--trust-type", help="A type to allow when loading a skops model file (repeatable)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Load a pickle/cloudpickle model file (runs code from it) [also: allow_pickle = true under [tool.mpack]]."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="MPACK_CACHE_DIR", help="Cache for runtime wheels [default: ~/.cache/mpack]."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Run the finished bundle (or image) on the input example before publishing it."),
    base_image: Optional[str] = typer.Option(None, "--base-image", help="Image targets: the base image, already on this machine [default: python:<py>-slim]."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Image targets: the image reference [default: mpack/<model>:<version>-<target>]."),
    push: bool = typer.Option(False, "--push", help="Image targets: push to the registry the tag names, after the image answered."),
    platform: Optional[str] = typer.Option(None, "--platform", help="Image targets: linux/amd64 or linux/arm64 (the same as --arch x86_64|arm64)."),
    runtime: str = typer.Option("auto", "--runtime", help="onnx, native (ship scikit-learn itself; image targets) or auto (native only when ONNX cannot express the model)."),
    as_json: bool = typer.Option(False, "--json", help="Print one machine-readable build report on stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Build a deployable bundle from a model."""
    from mpack.packager.pipeline import BuildOptions
    from mpack.packager.pipeline import build as run_build
    from mpack.packager.progress import RichProgress

    if platform is not None:
        with _error_boundary(as_json, debug):
            arch = _arch_of_platform(platform, arch)

    options = BuildOptions(
        model=model,
        target=target,
        output=output,
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        python=python,
        arch=arch,
        tolerance=tolerance,
        sample_data=sample_data,
        lambda_http=lambda_http,
        trusted_types=tuple(trust_type),
        allow_pickle=allow_pickle,
        cache_dir=cache_dir,
        verify=verify,
        base_image=base_image,
        tag=tag,
        push=push,
        runtime=runtime,
    )
    with _error_boundary(as_json, debug):
        if not allow_pickle:
            from mpack.packager.cli.build_settings import allow_pickle_setting

            options = replace(options, allow_pickle=allow_pickle_setting(Path.cwd()))
        report = run_build(options, RichProgress(_stderr))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_summary(report)


def _arch_of_platform(platform: str, arch: str | None) -> str:
    arches = {"linux/amd64": "x86_64", "linux/arm64": "arm64", "linux/arm64/v8": "arm64"}
    if platform not in arches:
        raise MpackError(f"--platform {platform} is not a platform mpack builds for", "use linux/amd64 or linux/arm64")
    if arch is not None and arch != arches[platform]:
        raise MpackError(f"--platform {platform} contradicts --arch {arch}", "give one of them")
    return arches[platform]


def _print_summary(report) -> None:
    mib = 2**20
    if report.image:
        image = report.image
        _stderr.print(f"\n[bold]{image['tag']}[/bold]  {image['size_bytes'] / mib:.0f} MB ({(image['size_bytes'] - image['base_size_bytes']) / mib:.0f} MB above its base), {len(image['layers'])} layers")
        _stderr.print(f"  entry point {report.handler}   id {image['id'][:19]}…")
        if image.get("pushed"):
            _stderr.print(f"  pushed {image['pushed']}")
        return
    _stderr.print(f"\n[bold]{report.artifact}[/bold]  {report.zipped_bytes / mib:.1f} MB zipped, {report.unzipped_bytes / mib:.1f} MB unzipped")
    _stderr.print(f"  handler {report.handler}   sha256 {report.sha256[:16]}…")
    for part in report.contributors:
        _stderr.print(f"  {part['name']:<28} {part['unzipped'] / mib:7.1f} MB  ({part['zipped'] / mib:.1f} MB zipped)")


@app.command("base-image")
def base_image_command(
    tag: str = typer.Option("mpack/python:3.11-bookworm", "--tag", help="Reference of the image to create."),
    suite: str = typer.Option("bookworm", "--suite", help="Debian release (bookworm's python3 is 3.11)."),
    mirror: str = typer.Option("http://deb.debian.org/debian", "--mirror", help="Debian mirror debootstrap installs from."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build again even if the tag exists."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Build a Debian Python base image from Debian packages alone (debootstrap + docker import): no registry needed."""
    from mpack.packager.image.base_image import build_base_image

    with _error_boundary(False, debug):
        made = build_base_image(tag, suite, mirror, rebuild, log=lambda text: _stderr.print(f"[dim]{escape(text)}[/dim]"))
    state = "already there (use --rebuild to build again)" if made.reused else "built"
    _stderr.print(f"[bold]{made.tag}[/bold] {made.size_bytes / 2**20:.0f} MB, {state}")
    print(made.tag)


_MEMORY = typer.Option(1024, "--memory", help="Memory size in MB (128-10240): enforced, and it sets the CPU share the model uses.")
_TIMEOUT = typer.Option(3.0, "--timeout", help="Function timeout in seconds (1-900), as on Lambda.")
_ENV = typer.Option([], "--env", help="KEY=VALUE for the function's environment (repeatable).")
_HANDLER = typer.Option(None, "--handler", help="MODULE.FUNCTION [default: from the bundle's mpack.json].")
_NAME = typer.Option(None, "--name", help="Function name [default: the model's name].")
_CACHE = typer.Option(None, "--cache-dir", envvar="MPACK_CACHE_DIR", help="Cache for unpacked bundles and the runtime client [default: ~/.cache/mpack].")


@app.command()
def invoke(
    bundle: Path = typer.Argument(..., help="A bundle zip from mpack build, or its unpacked folder."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="The request, e.g. an MLflow scoring JSON document."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Read the request from a file [default: standard input, else the bundle's input example]."),
    event: str = typer.Option("direct", "--event", "-e", help="Wrap the data as: direct, apigw-rest, apigw-http, function-url, alb or sqs (a JSON list: one record each)."),
    event_file: Optional[Path] = typer.Option(None, "--event-file", help="A complete hand-made event (JSON) instead of --data."),
    content_type: str = typer.Option("application/json", "--content-type", help="Content type of HTTP events' body."),
    path: str = typer.Option("/invocations", "--path", help="Request path of HTTP events."),
    memory: int = _MEMORY,
    timeout: float = _TIMEOUT,
    env: list[str] = _ENV,
    handler: Optional[str] = _HANDLER,
    name: Optional[str] = _NAME,
    cache_dir: Optional[Path] = _CACHE,
    as_json: bool = typer.Option(False, "--json", help="Print the raw response payload only (logs and REPORT still go to stderr)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Invoke a bundle once on the local Lambda platform, print the answer and the REPORT line.

    Exit code 0 only when the function answered and the answer is not an error: a function error,
    timeout, memory kill, init error or refused request exits 1 (so it works as a CI smoke test)."""
    from mpack.packager.cli.local import InvokeInput, RunOptions, answer_failure, event_payload, open_function, read_stdin

    options = RunOptions(bundle, memory, timeout, tuple(env), handler, name, cache_dir)
    given = InvokeInput(data, data_file, event, event_file, content_type, path)
    with _error_boundary(False, debug):  # with --json, stdout holds the payload alone; errors go to stderr
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


@app.command()
def serve(
    bundle: Path = typer.Argument(..., help="A bundle zip from mpack build, or its unpacked folder."),
    port: int = typer.Option(3000, "--port", "-p", help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    max_concurrency: int = typer.Option(4, "--max-concurrency", help="Most instances running at once; more requests wait their turn."),
    memory: int = _MEMORY,
    timeout: float = _TIMEOUT,
    env: list[str] = _ENV,
    handler: Optional[str] = _HANDLER,
    name: Optional[str] = _NAME,
    cache_dir: Optional[Path] = _CACHE,
    async_retries: int = typer.Option(2, "--async-retries", help="Retries of a failed Event invocation (0-2), as Lambda's MaximumRetryAttempts."),
    async_retry_delay: float = typer.Option(60.0, "--async-retry-delay", help="Seconds before the first retry (the second waits twice as long), as on Lambda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only REPORT lines, not the function's own logs."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Serve a bundle locally: the Lambda Invoke API (boto3 works against it) and an HTTP gateway."""
    from mpack.packager.cli.local import RunOptions, open_function, serve_until_stopped

    options = RunOptions(bundle, memory, timeout, tuple(env), handler, name, cache_dir)
    lock = threading.Lock()  # one log block at a time from the pool's threads

    def show(result) -> None:
        with lock:
            sys.stderr.write((result.report + "\n") if quiet else result.log)
            sys.stderr.flush()

    with _error_boundary(False, debug):
        function = open_function(options, max_concurrency, on_result=show)
        config = function.config

        def announce(url: str) -> None:
            _stderr.print(f"mpack serve: [bold]{config.name}[/bold] ({config.handler}), {config.memory_mb} MB, {config.timeout_s:g} s timeout, up to {max_concurrency} instances")
            _stderr.print(f"  Invoke API    {url}/2015-03-31/functions/{config.name}/invocations", soft_wrap=True)
            _stderr.print(f"  HTTP gateway  {url}/invocations", soft_wrap=True)
            _stderr.print("  Ctrl-C to stop")

        def note(text: str) -> None:
            with lock:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()

        serve_until_stopped(function, host, port, announce, async_retries, async_retry_delay, note)


_FUNCTION = typer.Option(..., "--function", "-f", help="Lambda function name.")
_ALIAS = typer.Option("live", "--alias", help="The alias that serves traffic.")
_REGION = typer.Option(None, "--region", help="AWS region [default: AWS_REGION].")
_YES = typer.Option(False, "--yes", "-y", help="Apply without asking (required when stdin is not a terminal).")
_PLAN = typer.Option(False, "--plan", help="Only show the plan; change nothing.")
_JSON = typer.Option(False, "--json", help="Print what was planned and done as JSON on stdout.")


@app.command()
def deploy(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="A Lambda zip (--target lambda) or a local Lambda image tag (--target lambda-image)."),
    function: Optional[str] = typer.Option(None, "--function", "-f", help="Lambda function name (or `function` in mpack.toml / [tool.mpack.deploy])."),
    alias: str = _ALIAS,
    canary: Optional[float] = typer.Option(None, "--canary", help="Send PCT% of the alias's traffic to the new version; the serving version keeps the rest."),
    memory: int = typer.Option(1024, "--memory", help="Memory size in MB."),
    timeout: int = typer.Option(30, "--timeout", help="Timeout in seconds."),
    arch: Optional[str] = typer.Option(None, "--arch", help="x86_64 or arm64 [default: the bundle's; a different one is refused]."),
    role: Optional[str] = typer.Option(None, "--role", help="Execution role ARN [default: create a least-privilege one]."),
    env: list[str] = _ENV,
    reserved: Optional[int] = typer.Option(None, "--reserved", help="Reserved concurrency."),
    provisioned: Optional[int] = typer.Option(None, "--provisioned", help="Provisioned concurrency on the alias."),
    function_url: str = typer.Option("none", "--function-url", help="none, iam (signed requests) or public (anyone: asked for explicitly)."),
    bucket: Optional[str] = typer.Option(None, "--bucket", help="S3 bucket for zips over 50 MB [default: mpack-artifacts-<function>]."),
    repository: Optional[str] = typer.Option(None, "--repository", help="Image deploys: the ECR repository [default: the function name]."),
    region: Optional[str] = _REGION,
    smoke_test: str = typer.Option("aws", "--smoke-test", help="aws (invoke the new version), local (run the bundle on mpack's local platform) or none."),
    cache_dir: Optional[Path] = _CACHE,
    plan: bool = _PLAN,
    yes: bool = _YES,
    as_json: bool = _JSON,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Deploy a bundle: plan from AWS's state, then publish a version, smoke-test it, move the alias.

    Settings may also come from mpack.toml ([deploy]) or pyproject.toml ([tool.mpack.deploy]); flags win."""
    from mpack.packager.cli.deploy import DeploySettings
    from mpack.packager.cli.deploy_settings import file_settings

    given = dict(function=function, alias=alias, canary=canary, memory=memory, timeout=timeout, role=role, env=env, reserved=reserved, provisioned=provisioned, function_url=function_url, bucket=bucket, repository=repository, region=region, smoke_test=smoke_test)
    with _error_boundary(as_json, debug):
        from_file, path = file_settings(Path.cwd())
        for key, value in from_file.items():
            source = ctx.get_parameter_source(key)
            if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):  # not given on the command line
                given[key] = value
        if not given["function"]:
            raise MpackError("no function name", "pass --function NAME (or set function in mpack.toml's [deploy] table)")
    settings = DeploySettings(bundle, given["function"], given["alias"], given["canary"], given["memory"], given["timeout"], given["role"], tuple(given["env"]), given["reserved"], given["function_url"], given["bucket"], given["region"], given["smoke_test"], cache_dir, given["provisioned"], given["repository"], arch)
    _release("deploy", settings, plan, yes, as_json, debug)


@app.command()
def promote(function: str = _FUNCTION, alias: str = _ALIAS, region: Optional[str] = _REGION, plan: bool = _PLAN, yes: bool = _YES, as_json: bool = _JSON, debug: bool = typer.Option(False, "--debug")) -> None:
    """Move the alias fully to its canary version."""
    from mpack.packager.cli.deploy import DeploySettings

    _release("promote", DeploySettings(None, function, alias, region=region), plan, yes, as_json, debug)


@app.command()
def rollback(function: str = _FUNCTION, alias: str = _ALIAS, region: Optional[str] = _REGION, plan: bool = _PLAN, yes: bool = _YES, as_json: bool = _JSON, debug: bool = typer.Option(False, "--debug")) -> None:
    """Put the alias back: drop a canary, or return to the version it served before the last move."""
    from mpack.packager.cli.deploy import DeploySettings

    _release("rollback", DeploySettings(None, function, alias, region=region), plan, yes, as_json, debug)


@app.command("export")
def export_command(
    bundle: Path = typer.Argument(..., help="A Lambda zip from mpack build --target lambda."),
    fmt: str = typer.Option("sam", "--format", help="sam or cloudformation."),
    function: str = _FUNCTION,
    alias: str = _ALIAS,
    canary: Optional[float] = typer.Option(None, "--canary", help="Canary percentage (SAM: a CodeDeploy canary; CloudFormation: weighted alias)."),
    memory: int = typer.Option(1024, "--memory"),
    timeout: int = typer.Option(30, "--timeout"),
    role: Optional[str] = typer.Option(None, "--role"),
    env: list[str] = _ENV,
    reserved: Optional[int] = typer.Option(None, "--reserved"),
    function_url: str = typer.Option("none", "--function-url"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the template [default: stdout]."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Write the deploy as a SAM or CloudFormation template."""
    import yaml
    from mpack.infra.aws.iac_export import FORMATS, export_template
    from mpack.packager.cli.deploy import DeploySettings, desired_function

    with _error_boundary(False, debug):
        if fmt not in FORMATS:
            raise MpackError(f"--format {fmt} is not one of {', '.join(FORMATS)}", "sam (with AutoPublishAlias) or cloudformation")
        desired = desired_function(DeploySettings(bundle, function, alias, canary, memory, timeout, role, tuple(env), reserved, function_url))
        text = yaml.safe_dump(export_template(desired, fmt, str(bundle)), sort_keys=False, width=120)
    if output:
        output.write_text(text)
        _stderr.print(f"wrote {output} ({fmt})")
    else:
        print(text, end="")


def _release(action: str, settings, plan: bool, yes: bool, as_json: bool, debug: bool) -> None:
    from mpack.infra.aws import deployer
    from mpack.infra.aws.session import Aws
    from mpack.packager.cli.deploy import confirm, desired_function, region_of, smoke_tester

    with _error_boundary(as_json, debug):
        if settings.function_url == "public":
            _stderr.print("[yellow]warning:[/yellow] --function-url public lets anyone on the internet invoke this function")
        aws = Aws(region_of(settings))
        desired = desired_function(settings, aws)
        smoke = smoke_tester(settings, aws, desired) if action == "deploy" else None  # a bad --smoke-test fails before planning
        planner = {"deploy": deployer.plan_deployment, "promote": deployer.plan_promotion, "rollback": deployer.plan_rollback_to_previous}[action]
        planned = planner(aws, desired)
        outcome = deployer.preview(planned)
        if not as_json or plan:
            _print_plan(action, outcome)
        if confirm(outcome.steps, yes, plan, lambda: typer.confirm("apply this plan?", default=False)):
            outcome = deployer.apply(aws, planned, smoke)
            if not as_json:
                for line in outcome.done:
                    _stderr.print(f"  {escape(line)}")
                _stderr.print(f"[green]done:[/green] alias {outcome.alias} -> version {outcome.state.get('alias_version')} {outcome.state.get('alias_weights') or ''}")
        if as_json:
            print(json.dumps(outcome.to_dict(), indent=2))


def _print_plan(action: str, outcome) -> None:
    if not outcome.steps:
        _stderr.print(f"{action} {outcome.function}: nothing to do (alias {outcome.alias} already serves this)")
        return
    _stderr.print(f"[bold]{action} {outcome.function}[/bold] — plan:")
    for number, step in enumerate(outcome.steps, 1):
        _stderr.print(f"  {number}. {escape(step)}")


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


class _error_boundary:
    """Turns MpackError (and only that) into a clean message and exit code 1."""

    def __init__(self, as_json: bool, debug: bool) -> None:
        self.as_json, self.debug = as_json, debug

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or not isinstance(error, MpackError) or self.debug:
            return False
        if self.as_json:
            print(json.dumps({"ok": False, "error": error.message, "hint": error.hint}))
        _stderr.print(f"[red]error:[/red] {escape(error.message)}", soft_wrap=True)
        if error.hint:
            _stderr.print(f"[cyan]hint:[/cyan] {escape(error.hint)}", soft_wrap=True)
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _stderr.print("[red]interrupted[/red]")
        sys.exit(130)


if __name__ == "__main__":
    main()
