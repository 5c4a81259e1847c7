"""One contract for every change mpack makes on a platform (an AWS deploy, an Azure deploy, later a
release sync): a frozen ``Plan`` of ``Step``s, shown by ``--plan`` exactly as it will be applied, and
one ``execute`` that runs the steps in order.

A step says what it will do (``describe``) and does it (``apply(context)``, returning a note worth
reporting, or None). Steps hand values on through the context (a published version, a SAS URL), never
through the plan: the plan is never changed while it runs, and what happened goes into a separate
``Record``. The first failing step stops the run with an error naming it and what was already done;
the plan is made again from the platform's state on the next run, so re-running converges.
Platform-neutral: infra/aws and infra/azure build their plans with it; nothing here knows either.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from mpack.infra.errors import MpackError, redact_credentials


class Step(Protocol):
    """One change (or check) on a platform. ``moves_traffic`` (optional, False when absent): once it
    is applied, requests reach the new version, so a later failure leaves the new version serving."""

    def describe(self) -> str: ...

    def apply(self, context: Any) -> str | None: ...


@dataclass(frozen=True)
class Plan:
    """The steps planned from one reading of the platform: shown, then applied exactly as they are.
    Platforms subclass it to keep what the plan was made from (the state read, what was asked)."""

    action: str  # deploy | promote | rollback
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))  # a list handed in cannot be changed later through the plan

    def descriptions(self) -> list[str]:
        return [redact_credentials(step.describe()) for step in self.steps]

    def serving(self) -> str:
        """What serves before the plan runs, in words (a platform says which version)."""
        return "what served before"


@dataclass(frozen=True)
class StepOutcome:
    number: int  # 1-based, as --plan numbers the steps
    description: str
    note: str | None  # what the step reported (a check's result), None when it has nothing to add

    @property
    def line(self) -> str:
        return self.note or self.description


@dataclass(frozen=True)
class Record:
    """What one run of a plan did, step by step."""

    plan: Plan
    outcomes: tuple[StepOutcome, ...]

    @property
    def notes(self) -> list[str]:
        return [outcome.note for outcome in self.outcomes if outcome.note]

    @property
    def lines(self) -> list[str]:
        return [outcome.line for outcome in self.outcomes]


class StepFailed(MpackError):
    """A step failed: its number and description, the platform's reason, and what was already done."""

    def __init__(self, outcome: StepOutcome, error: MpackError, record: Record) -> None:
        total = len(record.plan.steps)
        super().__init__(f"step {outcome.number} of {total} failed ({outcome.description}): {error.message}", "; ".join(filter(None, [error.hint, _what_changed(record)])))
        self.failed, self.cause, self.record = outcome, error, record


def execute(plan: Plan, context: Any, progress: Callable[[StepOutcome], None] | None = None, guard: Callable[[str], AbstractContextManager] | None = None) -> Record:
    """Apply ``plan``'s steps in order. ``guard(description)`` turns the platform's own exceptions into
    MpackError (AWS's ClientError, Azure's HttpResponseError); ``progress`` hears of each step done."""
    outcomes: list[StepOutcome] = []
    for number, step in enumerate(plan.steps, 1):
        description = redact_credentials(step.describe())
        try:
            with guard(step.describe()) if guard else nullcontext():
                note = step.apply(context)
        except MpackError as error:
            raise StepFailed(StepOutcome(number, description, None), error, Record(plan, tuple(outcomes))) from None
        outcomes.append(StepOutcome(number, description, note))
        if progress is not None:
            progress(outcomes[-1])
    return Record(plan, tuple(outcomes))


def _what_changed(record: Record) -> str:
    """The steps already applied, and whether traffic had moved, so the user knows where things stand."""
    done = len(record.outcomes)
    moves = [getattr(step, "moves_traffic", False) for step in record.plan.steps]
    said = ["done before it: " + ", ".join(f"{o.number}. {o.description}" for o in record.outcomes) if done else "no step was applied before it"]
    if any(moves[:done]):
        said.append("traffic had already moved: run the same command again to finish")
    elif any(moves):
        said.append(f"traffic did not move: {record.plan.serving()} still serves")
    return "; ".join(said)
