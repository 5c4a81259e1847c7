"""``mpack sync``: converge every declared release to what its registry alias names (DESIGN.md §14). Once (a CI
cron step), in a loop (--watch), or woken by MLflow's webhooks (--listen). Exit 0 when every release is where
the registry says (or waits for its bake, or another sync holds it), 1 when one failed, as ``mpack deploy``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Optional

import typer
from mpack.infra.errors import MpackError
from mpack.packager.cli.boundary import error_boundary, stderr
from mpack.packager.cli.options import CACHE_OPTION
from rich.markup import escape

MIN_LEASE_S = 60
LISTEN_FALLBACK_S = 300  # webhooks are not redelivered: a listening sync also looks every 5 minutes
MARKS = {"unchanged": "[green]ok[/green]", "recorded": "[green]ok[/green]", "baking": "[cyan]waiting[/cyan]", "held": "[yellow]held[/yellow]", "skipped": "[yellow]skipped[/yellow]", "alias missing": "[yellow]warning[/yellow]"}


def sync(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="The file declaring [[release]] tables [default: mpack.toml, else pyproject.toml's [[tool.mpack.release]]]."),
    only: list[str] = typer.Option([], "--release", "-r", help="Sync only this release (repeatable) [default: all]."),
    once: bool = typer.Option(False, "--once", help="Sync once and exit (the default without --watch or --listen): a CI cron step."),
    watch: Optional[int] = typer.Option(None, "--watch", help="Sync every SECONDS until stopped (sooner when a canary's bake ends)."),
    listen: Optional[int] = typer.Option(None, "--listen", help=f"Also receive MLflow webhooks on 127.0.0.1:PORT/ and sync on each [a sync every {LISTEN_FALLBACK_S} s too]."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address --listen binds (0.0.0.0 to receive from other machines)."),
    secret: Optional[str] = typer.Option(None, "--secret", envvar="MPACK_WEBHOOK_SECRET", help="The webhooks' secret: deliveries whose X-MLflow-Signature does not match are refused."),
    plan: bool = typer.Option(False, "--plan", help="Only show what each release would do; change nothing."),
    retry: bool = typer.Option(False, "--retry", help="Try again versions recorded as failed (build, smoke test or canary gates)."),
    lease: int = typer.Option(900, "--lease", help="Seconds a sync's lease on a function lasts unless renewed (renewed in the background every third of it while the sync works)."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", help="MLflow tracking URI [default: MLFLOW_TRACKING_URI]."),
    registry_uri: Optional[str] = typer.Option(None, "--registry-uri", help="MLflow registry URI [default: the tracking URI]."),
    cache_dir: Optional[Path] = CACHE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print each sync's outcome as JSON on stdout (one object per sync; --watch/--listen: one line per pass)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Release from the registry: for each [[release]] in mpack.toml, deploy the version its alias names (as a
    canary when asked, promoted after its bake when its errors and p99 stay within bounds), follow the alias
    back without rebuilding, and record in the registry where each version serves."""
    from mpack.packager.release.config import load_releases
    from mpack.packager.release.sync import SyncOptions

    with error_boundary(as_json, debug):
        if once and (watch is not None or listen is not None):
            raise MpackError("--once cannot be combined with --watch or --listen", "--once for a CI step; --watch/--listen for a long-running sync")
        if watch is not None and watch <= 0:
            raise MpackError(f"--watch {watch} is not a number of seconds", "e.g. --watch 60")
        if lease < MIN_LEASE_S:
            raise MpackError(f"--lease {lease} is too short to hold a function while a sync works", f"at least {MIN_LEASE_S} seconds (it is renewed every third of it)")
        releases, source = load_releases(config)
        releases = _chosen(releases, only, source)
        say = (lambda text: None) if as_json else (lambda text: stderr.print(f"  {escape(text)}", soft_wrap=True))
        options = SyncOptions(plan_only=plan, retry=retry, cache_dir=cache_dir, lease_s=lease, tracking_uri=tracking_uri, registry_uri=registry_uri, say=say, debug=debug)
        if watch is None and listen is None:
            raise typer.Exit(_sync_once(releases, options, as_json))
        _loop(releases, options, as_json, watch, listen, host, secret)


def _chosen(releases: list, only: list[str], source: Path) -> list:
    if not only:
        return releases
    names = {r.name for r in releases}
    unknown = [name for name in only if name not in names]
    if unknown:
        raise MpackError(f"no release named {', '.join(unknown)} in {source}", f"releases there: {', '.join(sorted(names))}")
    return [r for r in releases if r.name in only]


def _sync_once(releases: list, options, as_json: bool) -> int:
    from mpack.packager.release.sync import sync_release

    outcomes = []
    for release in releases:
        if not as_json:
            stderr.print(f"[bold]{escape(release.name)}[/bold] ({escape(release.model)} -> {escape(release.place)})")
        outcome = sync_release(release, options)
        outcomes.append(outcome)
        if not as_json:
            _print(outcome, options.plan_only)
    if as_json:
        print(json.dumps(_report(outcomes, options), indent=2), flush=True)
    return 1 if any(o.failed for o in outcomes) else 0


def _report(outcomes: list, options) -> dict:
    """One sync's JSON, the same for --once and each pass of --watch/--listen."""
    return {"ok": not any(o.failed for o in outcomes), "plan_only": options.plan_only, "releases": [o.to_dict() for o in outcomes]}


def _print(outcome, plan_only: bool) -> None:
    if outcome.plan and (plan_only or not outcome.applied):
        verb = "plan" if plan_only else "planned"
        stderr.print(f"  {verb}:")
        for number, line in enumerate(outcome.plan, 1):
            stderr.print(f"    {number}. {escape(line)}", soft_wrap=True)
    for warning in outcome.warnings:
        stderr.print(f"  [yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    mark = "[red]failed[/red]" if outcome.failed else "[cyan]would be[/cyan]" if plan_only and outcome.plan else MARKS.get(outcome.outcome, "[green]done[/green]")
    stderr.print(f"  {mark} {escape(outcome.outcome)}: {escape(outcome.reason)} ({outcome.seconds:.1f} s)", soft_wrap=True)
    if outcome.error and outcome.error.get("hint"):
        stderr.print(f"  [cyan]hint:[/cyan] {escape(outcome.error['hint'])}", soft_wrap=True)


def _loop(releases: list, options, as_json: bool, watch: Optional[int], listen: Optional[int], host: str, secret: Optional[str]) -> None:
    """Sync, then wait for the next tick, a webhook or the end of a bake; until interrupted."""
    import signal

    from mpack.packager.release.webhook import WebhookListener

    wake, stop = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), wake.set()))
    listener = None
    if listen is not None:
        try:
            listener = WebhookListener(listen, secret, {r.model_name for r in releases}, wake, lambda text: stderr.print(escape(text)), host=host)
        except OSError as exc:
            raise MpackError(f"cannot listen on {host}:{listen}: {exc}", "pick a free port") from None
        stderr.print(f"listening for MLflow webhooks on http://{host}:{listener.port}/" + ("" if secret else " [yellow](no secret: any delivery wakes the sync)[/yellow]"))
    period = watch or LISTEN_FALLBACK_S
    try:
        while not stop.is_set():
            wake.clear()
            from mpack.packager.release.sync import sync_release

            outcomes = [sync_release(release, options) for release in releases]
            if as_json:
                print(json.dumps(_report(outcomes, options)), flush=True)
            for outcome in [] if as_json else outcomes:
                stderr.print(f"[bold]{escape(outcome.release)}[/bold]")
                _print(outcome, options.plan_only)
            bakes = [o.bake_left_s for o in outcomes if o.bake_left_s]
            wake.wait(min([period, *(left + 1 for left in bakes)]))
    finally:
        if listener is not None:
            listener.close()
