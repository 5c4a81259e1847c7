"""Stage: every candidate through the same parity gate — the original model's answers (or the
unoptimized graph's) on the check rows, through the protocol core the bundle runs. A candidate the
user asked for stops the build when it fails; one that was only weighed is dropped, said why."""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.check.parity import check_parity, describe_failure, parity_requests


def check_candidates(state) -> None:
    tolerance = state.options.tolerance
    for unit in state.units:
        checks, converted = unit.checks, unit.converted
        requests = parity_requests(converted, checks.records, checks.request)
        for artifact in unit.candidates:
            artifact.parity = check_parity(converted, artifact.data, requests, checks.source, tolerance, checks.records, artifact.checking or artifact.service, artifact.near_ties)
            if artifact.probe is not None:
                artifact.probe.check()  # fp16: an intermediate that overflows in float16 but not in float32 stops the build
            if not artifact.parity.passed:
                _failed(state, unit, artifact)
            else:
                state.progress.note(_passed_line(artifact, converted.task))
        unit.dropped += [a for a in unit.candidates if not a.parity.passed]
        unit.candidates = [a for a in unit.candidates if a.parity.passed]


def _failed(state, unit, artifact) -> None:
    failure = describe_failure(artifact.parity)
    if artifact.required:
        raise MpackError(f"parity check failed for {artifact.label}: {failure}", "the converted model answers differently from the original; raise --tolerance if the difference is acceptable, or build with another --runtime or --precision")
    unit.not_weighed[artifact.label] = f"did not pass the parity gate: {failure}"
    state.progress.warn(f"the {artifact.label} candidate's answers differ: {failure}; not shipping it")


def _passed_line(artifact, task: str) -> str:
    report = artifact.parity
    worst = max((o.max_scaled_diff or 0.0 for o in report.outputs), default=0.0)
    ties = sum(o.tied_mismatches for o in report.outputs)
    agree = ", labels agree" + (f" (except {ties} {'near ' if artifact.near_ties else ''}ties)" if ties else "")
    return f"{artifact.label}: {report.rows} rows ({report.source}): max difference {worst:.2g}" + (agree if task == "classifier" else "")
