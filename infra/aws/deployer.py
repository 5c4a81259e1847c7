"""Deploy, promote, rollback: read the state from AWS, plan, then show or apply that plan with one
executor. A failure at any step stops there: the alias only moves in the last steps, after the
smoke test, so the serving version keeps serving; nothing is ever deleted."""

from __future__ import annotations

from dataclasses import dataclass, field

from mpack.packager.errors import MpackError

from .function_state import DesiredFunction, FunctionState, read_state
from .planner import plan_deploy, plan_promote, plan_rollback
from .session import Aws
from .steps import DeployContext


@dataclass
class Outcome:
    function: str
    alias: str
    steps: list[str]
    applied: bool
    done: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"ok": True, "function": self.function, "alias": self.alias, "plan": self.steps, "applied": self.applied, "changed": bool(self.steps) and self.applied, "checks": self.done, **self.state}


def deploy(aws: Aws, desired: DesiredFunction, smoke, apply: bool) -> Outcome:
    state = read_state(aws, desired.name, desired.alias, provisioned=desired.provisioned is not None)
    steps = plan_deploy(state, desired, 0 if desired.image else desired.zip_path.stat().st_size)
    return _run(aws, desired, state, steps, smoke, apply, desired.alias)


def promote(aws: Aws, desired: DesiredFunction, apply: bool) -> Outcome:
    state = _existing(aws, desired)
    return _run(aws, desired, state, plan_promote(state, desired.alias), None, apply, desired.alias)


def rollback(aws: Aws, desired: DesiredFunction, apply: bool) -> Outcome:
    state = _existing(aws, desired)
    return _run(aws, desired, state, plan_rollback(state, desired.alias), None, apply, desired.alias)


def _existing(aws: Aws, desired: DesiredFunction) -> FunctionState:
    state = read_state(aws, desired.name, desired.alias)
    if not state.exists:
        raise MpackError(f"function {desired.name} does not exist in {aws.region}", "deploy it first, or check --function and --region")
    return state


def _run(aws: Aws, desired: DesiredFunction, state: FunctionState, steps: list, smoke, apply: bool, alias: str) -> Outcome:
    outcome = Outcome(desired.name, alias, [step.describe() for step in steps], apply)
    if apply and steps:
        context = DeployContext(aws, desired, state, smoke or (lambda version: "not needed"))
        for step in steps:
            step.apply(context)
        outcome.done = context.done
    after = read_state(aws, desired.name, alias) if apply else state
    outcome.state = _summary(after)
    return outcome


def _summary(state: FunctionState) -> dict:
    if not state.exists:
        return {"function_arn": None}
    alias = state.alias
    return {
        "function_arn": state.arn,
        "alias_version": alias.version if alias else None,
        "alias_weights": alias.weights if alias else {},
        "previous_version": alias.previous if alias else None,
        "versions": sorted((v for v in state.versions if v != "$LATEST"), key=int),
        "function_url_auth": state.url_auth,
    }
