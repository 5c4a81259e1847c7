"""Stage: each runtime that can serve a unit prepares its candidate artifacts (the optimized graph
at the precisions weighed, the compiled module, the model as itself). ``--runtime auto`` weighs
every runtime that can serve; a named runtime is the only one, and why it cannot serve is an error."""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.runtimes import RUNTIMES, requested_runtime


def prepare_candidates(state) -> None:
    requested = requested_runtime(state.options.runtime)
    for unit in state.units:
        unit.candidates = []
        for runtime in [requested] if requested else RUNTIMES.values():
            why_not = runtime.why_not(unit, state)
            if why_not and requested:
                raise MpackError(why_not, "build with --runtime auto, or change the option named")
            if why_not:
                unit.not_weighed[runtime.name] = why_not
                continue
            try:
                unit.candidates += runtime.prepare(unit, state)
            except MpackError as error:
                if requested or not unit.candidates:
                    raise  # the runtime that must serve failed: nothing to ship
                unit.not_weighed[runtime.name] = error.message
