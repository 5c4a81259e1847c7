"""Deploy, promote, rollback: read the state from AWS, plan, then show or apply that plan with one
executor — the plan shown is the plan applied, read from AWS once. A failure at any step stops there: the alias only moves in the last steps, after the
smoke test, so the serving version keeps serving; nothing is ever deleted."""

from __future__ import annotations

from dataclasses import dataclass, field

from mpack.infra.aws.function_state import DesiredFunction, FunctionState, read_state
from mpack.infra.aws.planner import plan_deploy, plan_promote, plan_rollback
from mpack.infra.aws.session import Aws, aws_error
from mpack.infra.aws.steps import DeployContext
from mpack.infra.errors import MpackError


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
class Plan:
    """The steps planned from one reading of AWS's state: shown, then applied exactly as they are."""

    desired: DesiredFunction
    state: FunctionState
    steps: tuple
    alias: str


def plan_deployment(aws: Aws, desired: DesiredFunction) -> Plan:
    state = read_state(aws, desired.name, desired.alias, provisioned=desired.provisioned is not None or bool(desired.snapstart))
    return Plan(desired, state, tuple(plan_deploy(state, desired, 0 if desired.image else desired.zip_path.stat().st_size)), desired.alias)


def plan_promotion(aws: Aws, desired: DesiredFunction) -> Plan:
    state = _existing(aws, desired)
    return Plan(desired, state, tuple(plan_promote(state, desired.alias)), desired.alias)


def plan_rollback_to_previous(aws: Aws, desired: DesiredFunction) -> Plan:
    state = _existing(aws, desired)
    return Plan(desired, state, tuple(plan_rollback(state, desired.alias)), desired.alias)


def preview(plan: Plan) -> Outcome:
    """What the plan would do, changing nothing."""
    return Outcome(plan.desired.name, plan.alias, [step.describe() for step in plan.steps], False, state=_summary(plan.state))


def apply(aws: Aws, plan: Plan, smoke=None) -> Outcome:
    """Run the plan's steps in order with one executor; the state is read again only to report it."""
    outcome = Outcome(plan.desired.name, plan.alias, [step.describe() for step in plan.steps], True)
    if plan.steps:
        context = DeployContext(aws, plan.desired, plan.state, smoke or (lambda version: "not needed"))
        for step in plan.steps:
            run_step(step, context)
        outcome.done = context.done
    outcome.state = _summary(read_state(aws, plan.desired.name, plan.alias))
    return outcome


def run_step(step, context: DeployContext) -> None:
    """Apply one step; AWS's own errors are translated here, once, naming the step that failed."""
    try:
        step.apply(context)
    except MpackError:
        raise
    except Exception as exc:  # botocore's ClientError and friends, whatever the step called
        raise aws_error(exc, f"{step.describe()} (function {context.desired.name})") from None


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
