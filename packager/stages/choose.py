"""Stage: one artifact per unit, chosen by measurement among the candidates that passed the parity
gate. First the precision among a runtime's variants (float32 ships only when it passed and is
faster beyond noise: convert/float32_choice.prefer_float32); then the runtime (micro against
onnxruntime: packager/micro/choice.py's rule, with both cold starts measured in fresh processes of
the bundle's Python). The report shows every figure weighed."""

from __future__ import annotations

from dataclasses import replace

from mpack.packager.convert.float32_choice import Latency, prefer_float32
from mpack.packager.micro.choice import WARM_BOUND_MS, cold_start_ms, prefer_micro, warm_latencies
from mpack.infra.errors import MpackError
from mpack.packager.runtimes import AUTO, RUNTIMES, runtime_of
from mpack.packager.stages.dependencies import no_packages


def choose_artifacts(state) -> None:
    for unit in state.units:
        request = unit.checks.example
        if len(unit.candidates) > 1:
            _measure_warm(state, unit, request)
        precision = _choose_precision(unit)
        chosen, runtime_reason, measured = _choose_runtime(state, unit, request)
        unit.artifact = chosen
        unit.choice = _report(unit, chosen, runtime_reason, measured, precision)
    chosen = state.unit.artifact
    state.plan = runtime_of(chosen).plan(state.plan, chosen)
    if runtime_of(chosen).standard_library:
        state.installed = no_packages(state.work, state.plan.matches_host)


def _measure_warm(state, unit, request: dict) -> None:
    """Every candidate warm, in turns; where the model refuses the measuring rows (a fixed batch
    size), the graph as converted ships: nothing was weighed."""
    try:
        figures = warm_latencies([a.service for a in unit.candidates], request)
    except MpackError as error:
        state.progress.warn(f"the candidates could not be measured ({error.message}); shipping {unit.candidates[0].label}")
        unit.not_weighed.update({a.label: f"not measured: {error.message}" for a in unit.candidates[1:]})
        unit.candidates = unit.candidates[:1]
        return
    for artifact, measured in zip(unit.candidates, figures):
        artifact.measured.update(measured)


def _choose_precision(unit) -> dict | None:
    """Keep one artifact per runtime: the faster precision when a runtime offered several."""
    weighed = None
    for runtime in {a.runtime for a in unit.candidates}:
        variants = [a for a in unit.candidates if a.runtime == runtime]
        if len(variants) < 2:
            continue
        best = variants[0]  # the graph as converted; later ones are narrower variants that passed the gate
        for other in variants[1:]:
            if prefer_float32(True, _latency(best.measured), _latency(other.measured)):
                best = other
        others = ", ".join(a.precision for a in variants if a is not best)
        reason = f"{best.precision}: passed the parity gate and faster than {others} (measured)" if best is not variants[0] else f"{best.precision}: {others} passed the parity gate but is not faster beyond noise (measured)"
        weighed = {"chosen": best.precision, "reason": reason, "measured": {a.precision: a.measured for a in variants}, "parity": {a.precision: a.parity.to_dict() for a in variants}}
        unit.candidates = [a for a in unit.candidates if a.runtime != runtime or a is best]
    return weighed


def _latency(measured: dict) -> Latency:
    return Latency(measured["warm_1_row_us"], measured["warm_1000_rows_us"])


def _choose_runtime(state, unit, request: dict):
    """(artifact, reason, measured) — a standard-library runtime against one with libraries by
    cold start and warm latency, measured in the bundle's own Python."""
    light = next((a for a in unit.candidates if runtime_of(a).standard_library), None)
    heavy = next((a for a in unit.candidates if not runtime_of(a).standard_library), None)
    if light is None or heavy is None:
        chosen = light or heavy
        why_not = next((unit.not_weighed[name] for name, runtime in RUNTIMES.items() if runtime.standard_library and name in unit.not_weighed), "")
        reason = f"--runtime {state.options.runtime}" if state.options.runtime != AUTO else why_not or f"{chosen.runtime}: the only runtime that serves this model"
        return chosen, reason, {}
    timer = state.other.timer if state.other else None
    if state.plan.matches_host or timer is not None:
        measured = {a.runtime: dict(a.measured, cold_start_ms=_cold_start(state, unit, a, request, timer)) for a in (light, heavy)}
        state.progress.note("measured: " + "; ".join(_figures(name, figures) for name, figures in measured.items()))
        light_wins, reason = prefer_micro(measured[light.runtime])
    else:  # no container of the bundle's Python here: its cold start is unknown, onnxruntime is the safe choice
        measured = {light.runtime: dict(light.measured)}
        light_wins, reason = False, f"the {light.runtime} runtime's cold start could not be measured here (no container of Python {state.plan.python})"
    chosen = light if light_wins else heavy
    state.progress.note(f"runtime: {chosen.runtime}{' (standard library only)' if light_wins else ''}: {reason}")
    return chosen, reason, measured


def _figures(name: str, figures: dict) -> str:
    return f"{name} cold start {figures['cold_start_ms']:.0f} ms, one row {figures['warm_1_row_us']:.0f} us, 1,000 rows {figures['warm_1000_rows_us']:.0f} us"


def _cold_start(state, unit, artifact, request: dict, timer) -> float:
    """The bundle this artifact would make, materialized and started in fresh processes."""
    from mpack.packager.stages.manifest import bundle_files, manifest_of
    from mpack.packager.stages.package import handler_modules_of

    runtime = runtime_of(artifact)
    plan = runtime.plan(state.plan, artifact)
    installed = no_packages(state.work, plan.matches_host) if runtime.standard_library else state.installed
    measuring = replace(state, plan=plan, installed=installed, units=[replace(unit, artifact=artifact)])
    files = bundle_files(measuring, manifest_of(measuring))
    folder = state.work / f"measure-{artifact.runtime}"
    entries = state.target.entries(measuring.installed.site, files, handler_modules_of(state.target, runtime, state.options.lambda_http), runtime.standard_library, folder, measuring.precompile())
    return cold_start_ms(entries, state.work / f"measure-{artifact.runtime}-bundle", request, timer)


def _report(unit, chosen, reason: str, measured: dict, precision: dict | None) -> dict:
    micro = next((a for a in [chosen, *unit.candidates, *unit.dropped] if a.program is not None), None)
    return {
        "runtime": chosen.runtime,
        "precision": chosen.precision or None,
        "reason": reason,
        "warm_bound_ms": WARM_BOUND_MS,
        "measured": measured,
        "micro_parity": micro.parity.to_dict() if micro else None,
        "operators": list(micro.program.operators) if micro else None,
        "precision_choice": precision,
        "not_weighed": unit.not_weighed,
    }
