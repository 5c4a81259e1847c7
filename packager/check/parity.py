"""The parity gate: the shipped graph must answer like the original model.

Rows go through the same protocol core the bundle runs (``ScoringService``), so request parsing
and float32 feeding are checked too. Numbers are compared as |a - b| / max(1, |b|): absolute for
probabilities, relative for large regression targets. Labels must agree, except where the original
model's top two class probabilities tie exactly — or, for a half-precision graph (``near_ties``), lie
closer together than float16 can order them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from mpack.handlers.protocol import ScoringService
from mpack.infra.errors import MpackError
from mpack.packager.check.scoring import scoring_service
from mpack.packager.convert.converted import ConvertedModel
from mpack.packager.source.examples import plain_value


@dataclass(frozen=True)
class OutputParity:
    method: str
    output: str
    max_abs_diff: float | None  # None for labels/strings
    max_scaled_diff: float | None
    mismatches: int  # rows that differ beyond tolerance (labels: excluding ties)
    tied_mismatches: int
    passed: bool


@dataclass(frozen=True)
class ParityReport:
    rows: int
    source: str
    tolerance: float
    outputs: tuple[OutputParity, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "source": self.source, "tolerance": self.tolerance, "passed": self.passed, "outputs": [asdict(o) for o in self.outputs]}


def check_parity(converted: ConvertedModel, optimized: bytes, requests: list[tuple[str, dict]], source: str, tolerance: float, records=None, candidate=None, near_ties: float = 0.0) -> ParityReport:
    """Compare the optimized graph with the original model (or, for ONNX pass-through, with the
    unoptimized graph) on every predict method. ``candidate``: the service that answers for the
    bundle, when it is not this process (a native model scored in its own environment).
    ``near_ties``: a label may differ where the original's top two probabilities are this close."""
    candidate = candidate or _service(converted, optimized)
    baseline = None if converted.reference else _service(converted, converted.onnx_bytes)
    if converted.reference is None:
        reference = None
    else:  # tabular models answer records; tensor models the request's named tensors
        reference = converted.reference(records if records is not None else requests[0][1]["inputs"])
    probabilities = reference.get("predict_proba") if reference else None
    results, rows = [], 0
    for method, request in requests:
        answer = candidate.score_document(request)
        if not answer.ok:
            raise MpackError(f"the converted model refused the check rows ({method}): {answer.body.get('message')}", "check --sample-data against the model's signature")
        rows = answer.rows
        expected = reference[method] if reference else baseline.score_document(request).body["predictions"]
        got = answer.body["predictions"]
        outputs = converted.prediction["methods"][method]["outputs"]
        if len(outputs) == 1:
            got, expected = {outputs[0]: got}, {outputs[0]: expected}
        for name in outputs:
            is_label = method == "predict" and converted.task == "classifier"
            results.append(_compare(method, name, np.asarray(got[name]), np.asarray(expected[name]), tolerance, probabilities if is_label else None, near_ties))
    return ParityReport(rows, source, tolerance, tuple(results))


def parity_requests(converted: ConvertedModel, records, tensor_request: dict | None) -> list[tuple[str, dict]]:
    """One request per predict method, over all check rows."""
    if tensor_request is not None:
        base = tensor_request
    else:
        names = [c["name"] for c in converted.signature["columns"]]
        base = {"dataframe_split": {"columns": names, "data": [[plain_value(r.get(n)) for n in names] for r in records]}}
    return [(method, dict(base, params={"predict_method": method})) for method in converted.prediction["methods"]]


def _service(converted: ConvertedModel, model_bytes: bytes) -> ScoringService:
    return scoring_service(scoring_manifest(converted), model_bytes)


def scoring_manifest(converted: ConvertedModel) -> dict:
    """The part of the manifest the protocol core reads."""
    return {"signature": converted.signature, "prediction": converted.prediction, "model": {}, "native": converted.native}


def _compare(method: str, name: str, got: np.ndarray, expected: np.ndarray, tolerance: float, probabilities, near_ties: float = 0.0) -> OutputParity:
    if got.shape != expected.shape and _squeezed(got.shape) == _squeezed(expected.shape):
        got = got.reshape(expected.shape)  # [rows, 1] for [rows]: the same values; [rows * 10, 1] for [rows, 10] is not
    if got.shape != expected.shape:
        return OutputParity(method, name, None, None, int(max(got.size, expected.size)), 0, False)
    if probabilities is None and (got.dtype.kind in "fc" or expected.dtype.kind in "fc"):
        got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
        both_nan = np.isnan(got64) & np.isnan(expected64)
        diff = np.where(both_nan, 0.0, np.abs(got64 - expected64))
        scaled = diff / np.maximum(1.0, np.abs(np.nan_to_num(expected64)))
        failing = ~(scaled <= tolerance)
        bad = int(np.count_nonzero(failing.reshape(len(failing), -1).any(axis=1) if failing.ndim else failing))
        return OutputParity(method, name, float(np.nanmax(diff, initial=0.0)), float(np.nanmax(scaled, initial=0.0)), bad, 0, bad == 0)
    differs = got.reshape(len(got), -1) != expected.reshape(len(expected), -1)
    differs = differs.any(axis=1) if differs.ndim > 1 else differs
    tied = 0
    if probabilities is not None and differs.any():
        top2 = np.sort(np.asarray(probabilities), axis=1)[:, -2:]
        ties = top2[:, 1] - top2[:, 0] <= near_ties
        tied = int(np.count_nonzero(differs & ties))
        differs = differs & ~ties
    bad = int(np.count_nonzero(differs))
    return OutputParity(method, name, None, None, bad, tied, bad == 0)


def _squeezed(shape: tuple) -> tuple:
    return tuple(d for d in shape if d != 1)


def describe_failure(report: ParityReport) -> str:
    failed = [o for o in report.outputs if not o.passed]
    parts = []
    for output in failed:
        if output.max_scaled_diff is not None:
            parts.append(
                f"{output.method} output '{output.output}': max difference {output.max_abs_diff:.3g} (scaled {output.max_scaled_diff:.3g}) > tolerance {report.tolerance:g} on {output.mismatches} of {report.rows} rows"
            )
        else:
            parts.append(f"{output.method} output '{output.output}': {output.mismatches} of {report.rows} rows differ")
    return "; ".join(parts)
