"""``mpack deploy/rollback --platform azure``: the command line's Azure settings, checked and handed
to the Azure deployer; the same plan / confirm / apply / report flow as the AWS one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer
from mpack.infra.errors import MpackError, redact_credentials
from mpack.packager.cli.boundary import error_boundary, stderr
from rich.markup import escape

SMOKE_TESTS = ("local", "none")


@dataclass(frozen=True)
class AzureSettings:
    app: str | None
    resource_group: str | None
    subscription: str | None = None
    storage_connection_string: str | None = None
    package_container: str | None = None
    canary: float | None = None
    smoke_test: str = "local"


def release(action: str, bundle: Path | None, settings: AzureSettings, plan_only: bool, yes: bool, as_json: bool, debug: bool) -> None:
    from mpack.infra.azure import deployer
    from mpack.infra.azure.session import AzureSession, AzureTarget, resolve_subscription
    from mpack.packager.cli.deploy import confirm

    with error_boundary(as_json, debug):
        if not settings.app or not settings.resource_group:
            raise MpackError("an Azure deploy needs the app and its resource group", "pass --app NAME --resource-group RG")
        if settings.smoke_test not in SMOKE_TESTS:
            raise MpackError(
                f"--smoke-test {settings.smoke_test} is not available on Azure", f"choose one of {', '.join(SMOKE_TESTS)} (local: the package on the local Functions host before anything changes)"
            )
        session = AzureSession(AzureTarget(resolve_subscription(settings.subscription), settings.resource_group, settings.app, settings.storage_connection_string))
        if action == "deploy":
            package = deployer.read_package(bundle)
            plan = deployer.plan_deployment(session, package, settings.canary, settings.package_container)
        elif action == "promote":
            plan = deployer.plan_promotion(session)
        else:
            plan = deployer.plan_rollback(session)
        if not as_json or plan_only:
            _print_plan(plan)
        smoke = deployer.local_smoke if settings.smoke_test == "local" else None
        record = None
        if confirm(plan.descriptions(), yes, plan_only, lambda: typer.confirm("apply this plan?", default=False), platform="Azure"):
            record = deployer.apply(session, plan, smoke, progress=None if as_json else _print_progress)
            if not as_json:
                stderr.print(f"[green]done:[/green] {_outcome(plan, settings)}")
        if as_json:
            print(json.dumps(plan.to_dict(record), indent=2))


def _print_progress(outcome) -> None:
    stderr.print(f"  {escape(redact_credentials(outcome.line))}", soft_wrap=True)


def _outcome(plan, settings: AzureSettings) -> str:
    url = f"https://{plan.state.host_name}/api/invocations"
    if plan.action == "deploy" and settings.canary:
        return f"{settings.canary:g}% of {settings.app}'s traffic goes to package {plan.package.sha[:12]} on slot staging ({url})"
    if plan.action == "rollback" and plan.state.canary_percent:
        return f"the canary is off: all of {settings.app}'s traffic on production again ({url})"
    sha = plan.package.sha if plan.package else (plan.state.slot.sha if plan.action == "promote" else plan.state.previous_sha)
    return f"{settings.app} serves package {(sha or '?')[:12]} ({url})"


def _print_plan(plan) -> None:
    if not plan.steps:
        stderr.print(f"{plan.action} {plan.state.name}: nothing to do (it already serves package {(plan.package.sha if plan.package else '')[:12]} as asked)")
        return
    stderr.print(f"[bold]{plan.action} {plan.state.name}[/bold] ({plan.state.plan}) — plan:")
    for number, step in enumerate(plan.descriptions(), 1):
        stderr.print(f"  {number}. {escape(step)}", soft_wrap=True)


def platform_of(platform: str | None, bundle: Path | None) -> str:
    """--platform, else the bundle's own target (an azure zip deploys to Azure), else aws."""
    if platform is not None:
        if platform not in ("aws", "azure"):
            raise MpackError(f"--platform {platform} is not a platform", "choose aws or azure")
        return platform
    if bundle is not None and bundle.is_file():
        from mpack.infra.local.local_bundle import bundle_target

        if bundle_target(bundle) == "azure":
            return "azure"
    return "aws"
