"""`mpack deploy`, `promote`, `rollback` and `export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from mpack.infra.errors import MpackError
from mpack.infra.kubernetes.manifests import FORMATS as KUBERNETES_FORMATS
from mpack.packager.cli.boundary import error_boundary as _error_boundary
from mpack.packager.cli.boundary import stderr as _stderr
from mpack.packager.cli.options import CACHE_OPTION, ENV_OPTION
from rich.markup import escape

_ALIAS = typer.Option("live", "--alias", help="The alias that serves traffic.")
_REGION = typer.Option(None, "--region", help="AWS region [default: AWS_REGION].")
_YES = typer.Option(False, "--yes", "-y", help="Apply without asking (required when stdin is not a terminal).")
_PLAN = typer.Option(False, "--plan", help="Only show the plan; change nothing.")
_JSON = typer.Option(False, "--json", help="Print what was planned and done as JSON on stdout.")
_PLATFORM = typer.Option(None, "--platform", help="aws or azure [default: the bundle's target (an azure zip goes to Azure), else aws].")
_APP = typer.Option(None, "--app", help="Azure: the function app's name.")
_RESOURCE_GROUP = typer.Option(None, "--resource-group", "-g", help="Azure: the app's resource group.")
_SUBSCRIPTION = typer.Option(None, "--subscription", envvar="AZURE_SUBSCRIPTION_ID", help="Azure: subscription id [default: AZURE_SUBSCRIPTION_ID].")
_STORAGE = typer.Option(
    None,
    "--storage-connection-string",
    envvar="AZURE_STORAGE_CONNECTION_STRING",
    help="Azure: connection string of the storage account holding packages [default: Azure AD through DefaultAzureCredential].",
)

_SNAPSTART = typer.Option(
    None, "--snapstart/--no-snapstart", help="SnapStart on published versions (Python 3.12+ zips; not with provisioned concurrency, EFS or over 512 MB of /tmp) [default: leave it as it is]."
)
_FUNCTION_URL = typer.Option(None, "--function-url", help="none (remove the URL mpack made), iam (signed requests) or public (anyone: asked for explicitly) [default: leave it as it is].")
_PACKAGE_CONTAINER = typer.Option(None, "--package-container", help="Azure run-from-package plans: container URL for packages [default: mpack-packages in the app's storage account].")


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
    env: list[str] = ENV_OPTION,
    reserved: Optional[int] = typer.Option(None, "--reserved", help="Reserved concurrency."),
    provisioned: Optional[int] = typer.Option(None, "--provisioned", help="Provisioned concurrency on the alias."),
    snapstart: Optional[bool] = _SNAPSTART,
    function_url: Optional[str] = _FUNCTION_URL,
    bucket: Optional[str] = typer.Option(None, "--bucket", help="S3 bucket for zips over 50 MB [default: mpack-artifacts-<function>]."),
    repository: Optional[str] = typer.Option(None, "--repository", help="Image deploys: the ECR repository [default: the function name]."),
    region: Optional[str] = _REGION,
    smoke_test: str = typer.Option("aws", "--smoke-test", help="aws (invoke the new version), local (run the bundle on mpack's local platform) or none. Azure: local (default) or none."),
    cache_dir: Optional[Path] = CACHE_OPTION,
    platform: Optional[str] = _PLATFORM,
    app: Optional[str] = _APP,
    resource_group: Optional[str] = _RESOURCE_GROUP,
    subscription: Optional[str] = _SUBSCRIPTION,
    storage_connection_string: Optional[str] = _STORAGE,
    package_container: Optional[str] = _PACKAGE_CONTAINER,
    plan: bool = _PLAN,
    yes: bool = _YES,
    as_json: bool = _JSON,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Deploy a bundle: plan from the platform's state, then apply it. AWS: publish a version,
    smoke-test it, move the alias. Azure (--platform azure --app NAME -g RG): keep the package,
    smoke-test it locally, release it (Flex Consumption) or point WEBSITE_RUN_FROM_PACKAGE at it.

    Settings may also come from mpack.toml ([deploy]) or pyproject.toml ([tool.mpack.deploy]); flags win."""
    from mpack.packager.cli.azure_deploy import AzureSettings, platform_of, release

    with _error_boundary(as_json, debug):
        chosen = platform_of(platform, bundle)
    if chosen == "azure":
        settings = AzureSettings(app, resource_group, subscription, storage_connection_string, package_container, canary, _azure_smoke_test(ctx, smoke_test))
        release("deploy", bundle, settings, plan, yes, as_json, debug)
        return
    with _error_boundary(as_json, debug):
        settings = _aws_settings(ctx, bundle, cache_dir, arch)
    _release("deploy", settings, plan, yes, as_json, debug)


# the flags an AWS deploy reads, by parameter name (mpack.toml's [deploy] may give those deploy_settings.KEYS names)
_AWS_FLAGS = ("function", "alias", "canary", "memory", "timeout", "role", "env", "reserved", "provisioned", "function_url", "bucket", "repository", "region", "smoke_test", "snapstart")


def _azure_smoke_test(ctx: typer.Context, smoke_test: str) -> str:
    """Azure smoke-tests locally unless --smoke-test is given (the flag's default, aws, is AWS's)."""
    return "local" if ctx.get_parameter_source("smoke_test").name == "DEFAULT" else smoke_test


def _aws_settings(ctx: typer.Context, bundle: Path, cache_dir: Optional[Path], arch: Optional[str]):
    """The deployer's settings for an AWS deploy (--cache-dir and --arch are never read from the settings file)."""
    from mpack.packager.deploy.aws_settings import KEEP_URL, DeploySettings

    given = _flags_or_file(ctx)
    return DeploySettings(
        bundle,
        given["function"],
        given["alias"],
        given["canary"],
        given["memory"],
        given["timeout"],
        given["role"],
        tuple(given["env"]),
        given["reserved"],
        given["function_url"] or KEEP_URL,
        given["bucket"],
        given["region"],
        given["smoke_test"],
        cache_dir,
        given["provisioned"],
        given["repository"],
        arch,
        snapstart=given["snapstart"],
    )


def _flags_or_file(ctx: typer.Context) -> dict:
    """The AWS flags, each taken from mpack.toml / pyproject.toml where it was not given on the command line."""
    from mpack.packager.cli.deploy_settings import file_settings

    given = {name: ctx.params[name] for name in _AWS_FLAGS}
    from_file, _ = file_settings(Path.cwd())
    for key, value in from_file.items():
        source = ctx.get_parameter_source(key)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):  # not given on the command line
            given[key] = value
    if not given["function"]:
        raise MpackError("no function name", "pass --function NAME (or set function in mpack.toml's [deploy] table)")
    return given


def promote(
    function: Optional[str] = typer.Option(None, "--function", "-f", help="Lambda function name."),
    alias: str = _ALIAS,
    region: Optional[str] = _REGION,
    platform: Optional[str] = _PLATFORM,
    app: Optional[str] = _APP,
    resource_group: Optional[str] = _RESOURCE_GROUP,
    subscription: Optional[str] = _SUBSCRIPTION,
    storage_connection_string: Optional[str] = _STORAGE,
    plan: bool = _PLAN,
    yes: bool = _YES,
    as_json: bool = _JSON,
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Move the alias fully to its canary version. Azure (--platform azure --app NAME -g RG): the
    canary slot's package to production, then all traffic there."""
    _move("promote", function, alias, region, platform, (app, resource_group, subscription, storage_connection_string), plan, yes, as_json, debug)


def rollback(
    function: Optional[str] = typer.Option(None, "--function", "-f", help="Lambda function name."),
    alias: str = _ALIAS,
    region: Optional[str] = _REGION,
    platform: Optional[str] = _PLATFORM,
    app: Optional[str] = _APP,
    resource_group: Optional[str] = _RESOURCE_GROUP,
    subscription: Optional[str] = _SUBSCRIPTION,
    storage_connection_string: Optional[str] = _STORAGE,
    plan: bool = _PLAN,
    yes: bool = _YES,
    as_json: bool = _JSON,
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Put the alias back: drop a canary, or return to the version it served before the last move.
    Azure (--platform azure --app NAME -g RG): serve the package the last deploy replaced."""
    _move("rollback", function, alias, region, platform, (app, resource_group, subscription, storage_connection_string), plan, yes, as_json, debug)


def _move(action: str, function, alias: str, region, platform, azure: tuple, plan: bool, yes: bool, as_json: bool, debug: bool) -> None:
    """promote / rollback: the AWS alias, or (--platform azure) the app's package and traffic."""
    from mpack.packager.cli.azure_deploy import AzureSettings, platform_of, release
    from mpack.packager.deploy.aws_settings import DeploySettings

    with _error_boundary(as_json, debug):
        chosen = platform_of(platform, None)
        if chosen == "aws" and not function:
            raise MpackError("no function name", "pass --function NAME (or --platform azure --app NAME -g RG)")
    if chosen == "azure":
        release(action, None, AzureSettings(*azure), plan, yes, as_json, debug)
        return
    _release(action, DeploySettings(None, function, alias, region=region), plan, yes, as_json, debug)


def export_command(
    bundle: Path = typer.Argument(..., help="A Lambda zip (--target lambda), an azure zip (--target azure), or an HTTP image (--target container|gpu) for k8s/knative/kserve."),
    fmt: Optional[str] = typer.Option(
        None,
        "--format",
        help="sam or cloudformation (Lambda zips); bicep or arm (azure zips: a Flex Consumption app); k8s, knative or kserve (container/gpu images) [default: sam, or bicep for an azure zip].",
    ),
    function: Optional[str] = typer.Option(None, "--function", "-f", help="Lambda function name."),
    alias: str = _ALIAS,
    canary: Optional[float] = typer.Option(None, "--canary", help="Canary percentage (SAM: a CodeDeploy canary; CloudFormation: weighted alias)."),
    memory: int = typer.Option(1024, "--memory"),
    timeout: int = typer.Option(30, "--timeout"),
    role: Optional[str] = typer.Option(None, "--role"),
    env: list[str] = ENV_OPTION,
    reserved: Optional[int] = typer.Option(None, "--reserved"),
    function_url: str = typer.Option("none", "--function-url"),  # a template describes the whole function
    snapstart: bool = typer.Option(False, "--snapstart", help="SnapStart on published versions (Python 3.12+ zips)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the template [default: stdout]."),
    memory_mib: Optional[float] = typer.Option(None, "--memory-mib", help="k8s/knative/kserve: the memory the server uses [default: measured by running the image on its input example]."),
    namespace: Optional[str] = typer.Option(None, "--namespace", help="k8s/knative/kserve: the namespace of the resources [default: none, kubectl's]."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Write the deploy as a SAM or CloudFormation template (Lambda), or as Bicep or an ARM template
    for a Flex Consumption app (azure bundles)."""
    import yaml
    from mpack.infra.aws.iac_export import FORMATS, export_template
    from mpack.packager.cli.azure_deploy import platform_of
    from mpack.packager.deploy.aws_settings import DeploySettings, desired_function

    with _error_boundary(False, debug):
        if fmt in KUBERNETES_FORMATS:
            _write(_kubernetes_manifests(str(bundle), fmt, memory_mib, namespace), output, fmt)
            return
        if platform_of(None, bundle) == "azure" or fmt in ("bicep", "arm"):
            text, fmt = _azure_template(bundle, fmt or "bicep"), fmt or "bicep"
            _write(text, output, fmt)
            return
        fmt = fmt or "sam"
        if not function:
            raise MpackError("no function name", "pass --function NAME")
        if fmt not in FORMATS:
            raise MpackError(f"--format {fmt} is not one of {', '.join(FORMATS)}", "sam (with AutoPublishAlias) or cloudformation")
        desired = desired_function(DeploySettings(bundle, function, alias, canary, memory, timeout, role, tuple(env), reserved, function_url, snapstart=snapstart or None))
        text = yaml.safe_dump(export_template(desired, fmt, str(bundle)), sort_keys=False, width=120)
    _write(text, output, fmt)


def _write(text: str, output: Optional[Path], fmt: str) -> None:
    if output:
        output.write_text(text)
        _stderr.print(f"wrote {output} ({fmt})")
    else:
        print(text, end="")


def _kubernetes_manifests(image: str, fmt: str, memory_mib: Optional[float], namespace: Optional[str]) -> str:
    import yaml
    from mpack.infra.docker_engine import connect
    from mpack.infra.kubernetes.manifests import kubernetes_manifests
    from mpack.packager.image.memory import image_manifest, serving_memory_mib

    client = connect()
    manifest = image_manifest(client, image)
    if manifest.get("target") not in ("container", "gpu"):
        raise MpackError(f"{image} is a {manifest.get('target')} image; {fmt} manifests serve the HTTP images", "build one with --target container or --target gpu")
    if memory_mib is not None and memory_mib <= 0:
        raise MpackError(f"--memory-mib {memory_mib:g} is not a memory size", "give the server's memory in MiB, e.g. 512")
    if memory_mib is None:
        memory_mib = serving_memory_mib(client, image, manifest)
        _stderr.print(f"measured {memory_mib:.0f} MiB serving the input example: resource requests are derived from it")
    documents = kubernetes_manifests(fmt, image, manifest["model"], memory_mib, bool(manifest["runtime"].get("cuda")), namespace)
    return yaml.safe_dump_all(documents, sort_keys=False, width=120)


def _azure_template(bundle: Path, fmt: str) -> str:
    from mpack.infra.azure.deployer import read_package
    from mpack.infra.azure.iac_export import FORMATS, export_azure

    if fmt not in FORMATS:
        raise MpackError(f"--format {fmt} is not one of {', '.join(FORMATS)} for an azure bundle", "bicep or arm (a Flex Consumption app)")
    return export_azure(read_package(bundle).manifest, fmt)


def _release(action: str, settings, plan: bool, yes: bool, as_json: bool, debug: bool) -> None:
    from mpack.infra.aws import deployer
    from mpack.infra.aws.session import Aws
    from mpack.packager.cli.deploy import confirm
    from mpack.packager.deploy.aws_settings import desired_function, region_of, smoke_tester

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
            outcome = deployer.apply(aws, planned, smoke, progress=None if as_json else _print_progress)
            if not as_json:
                _stderr.print(f"[green]done:[/green] alias {outcome.alias} -> version {outcome.state.get('alias_version')} {outcome.state.get('alias_weights') or ''}")
        if as_json:
            print(json.dumps(outcome.to_dict(), indent=2))


def _print_progress(outcome) -> None:
    _stderr.print(f"  {escape(outcome.line)}", soft_wrap=True)


def _print_plan(action: str, outcome) -> None:
    if not outcome.steps:
        _stderr.print(f"{action} {outcome.function}: nothing to do (alias {outcome.alias} already serves this)")
        return
    _stderr.print(f"[bold]{action} {outcome.function}[/bold] — plan:")
    for number, step in enumerate(outcome.steps, 1):
        _stderr.print(f"  {number}. {escape(step)}")
