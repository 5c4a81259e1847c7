"""What a bundle's model runs on, chosen by name like targets (DESIGN.md §13): onnx (onnxruntime, at
a precision chosen by measurement), micro (the graph compiled to standard-library Python) and native
(the model's own framework). Each says why it cannot serve a unit, prepares its candidate artifacts,
and turns the target's runtime plan into its own. Adding a runtime: a module and a line in ``RUNTIMES``.
"""

from __future__ import annotations

from typing import Protocol

from mpack.infra.errors import MpackError
from mpack.packager.runtimes.micro import MicroRuntime
from mpack.packager.runtimes.native import NativeRuntime
from mpack.packager.runtimes.onnx import OnnxRuntime

AUTO = "auto"  # --runtime auto: every runtime that can serve the unit is weighed


class Runtime(Protocol):
    name: str
    standard_library: bool  # ships no libraries at all (the target's standard-library entry point)
    ships_model_as_itself: bool  # converted as the model's own file (no ONNX)
    handler_modules: tuple[str, ...]  # handler modules only bundles of this runtime import

    def why_not(self, unit, state) -> str | None:
        """Why it cannot serve ``unit`` on this target with these options (None: it can)."""

    def prepare(self, unit, state) -> list:
        """Its candidate ``Artifact``s for the unit (ONNX: one per precision weighed)."""

    def plan(self, base, artifact):
        """The target's ``RuntimePlan`` turned into this runtime's (which libraries ship)."""


RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (OnnxRuntime(), MicroRuntime(), NativeRuntime())}
REQUESTS = (AUTO, *RUNTIMES)


def requested_runtime(word: str) -> Runtime | None:
    """The runtime ``--runtime`` names (None for auto), or a clear error."""
    if word == AUTO:
        return None
    try:
        return RUNTIMES[word]
    except KeyError:
        raise MpackError(f"--runtime {word} is not a runtime", f"choose one of {', '.join(REQUESTS)}") from None


def runtime_of(artifact) -> Runtime:
    return RUNTIMES[artifact.runtime]


def optional_handler_modules() -> frozenset[str]:
    """Handler modules that only some runtimes' bundles import."""
    return frozenset(module for runtime in RUNTIMES.values() for module in runtime.handler_modules)
