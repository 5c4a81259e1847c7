"""``mpack deploy`` / ``promote`` / ``rollback``: the confirmation rule for CI (no terminal: ``--yes`` or
``--plan``). The settings themselves live in ``mpack.packager.deploy.aws_settings`` (the MLflow plugin and
``mpack sync`` deploy with them too)."""

from __future__ import annotations

import sys

from mpack.infra.errors import MpackError


def confirm(steps: list[str], yes: bool, plan_only: bool, ask, platform: str = "AWS") -> bool:
    """Whether to apply: --yes, or a person at a terminal saying yes. Without a terminal, refuse."""
    if plan_only or not steps:
        return False
    if yes:
        return True
    if not sys.stdin.isatty():
        raise MpackError(f"refusing to change {platform} without --yes: standard input is not a terminal", "add --yes in CI (or --plan to only show the plan)")
    return ask()
