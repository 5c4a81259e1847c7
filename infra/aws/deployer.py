"""Deploy, promote, rollback: read the state from AWS, plan, then show or apply that plan with the one
executor (``mpack.infra.plan``) — the plan shown is the plan applied, read from AWS once. A failure at
any step stops there: the alias only moves in the last steps, after the smoke test, so the serving
version keeps serving; nothing is ever deleted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mpack.infra.aws.function_state import DesiredFunction, FunctionState, read_state
from mpack.infra.aws.planner import plan_deploy, plan_promote, plan_rollback
from mpack.infra.aws.session import Aws, aws_call
from mpack.infra.aws.steps import DeployContext
from mpack.infra.errors import MpackError
from mpack.infra.plan import Plan, Record, StepOutcome, execute


@dataclass
class Outcome:
    function: str
    alias: str
    steps: list[str]
    applied: bool
    done: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "ok": True,
            "function": self.function,
            "alias": self.alias,
            "plan": self.steps,
            "applied": self.applied,
            "changed": bool(self.steps) and self.applied,
            "checks": self.done,
            **self.state,
        }


@dataclass(frozen=True)
class FunctionPlan(Plan):
    """A plan for one function and alias, with the state it was planned from."""

    desired: DesiredFunction
    state: FunctionState
    alias: str

    def serving(self) -> str:
        alias = self.state.alias
        return f"version {alias.version} (alias {self.alias})" if alias else "the function as it was"


def plan_deployment(aws: Aws, desired: DesiredFunction) -> FunctionPlan:
    state = read_state(aws, desired.name, desired.alias, provisioned=desired.provisioned is not None or bool(desired.snapstart))
    return FunctionPlan("deploy", plan_deploy(state, desired, 0 if desired.image else desired.zip_path.stat().st_size), desired, state, desired.alias)


def plan_promotion(aws: Aws, desired: DesiredFunction) -> FunctionPlan:
    state = _existing(aws, desired)
    return FunctionPlan("promote", plan_promote(state, desired.alias), desired, state, desired.alias)


def plan_rollback_to_previous(aws: Aws, desired: DesiredFunction) -> FunctionPlan:
    state = _existing(aws, desired)
    return FunctionPlan("rollback", plan_rollback(state, desired.alias), desired, state, desired.alias)


def preview(plan: FunctionPlan) -> Outcome:
    """What the plan would do, changing nothing."""
    return Outcome(plan.desired.name, plan.alias, plan.descriptions(), False, state=_summary(plan.state))


def apply(aws: Aws, plan: FunctionPlan, smoke=None, progress: Callable[[StepOutcome], None] | None = None) -> Outcome:
    """Run the plan with the one executor; the state is read again only to report it."""
    outcome = Outcome(plan.desired.name, plan.alias, plan.descriptions(), True)
    if plan.steps:
        outcome.done = run(plan, DeployContext(aws, plan.desired, plan.state, smoke or (lambda version: "not needed")), progress).notes
    outcome.state = _summary(read_state(aws, plan.desired.name, plan.alias))
    return outcome


def run(plan: Plan, context: DeployContext, progress: Callable[[StepOutcome], None] | None = None) -> Record:
    """The executor with AWS's errors translated once, naming the step and the function."""
    return execute(plan, context, progress, guard=lambda step: aws_call(f"{step} (function {context.desired.name})"))


def _existing(aws: Aws, desired: DesiredFunction) -> FunctionState:
    state = read_state(aws, desired.name, desired.alias)
    if not state.exists:
        raise MpackError(f"function {desired.name} does not exist in {aws.region}", "deploy it first, or check --function and --region")
    return state


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
