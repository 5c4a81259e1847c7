"""The standard-library kernels a compiled micro model calls (``model_micro.py`` imports them).

Per row, on plain sequences. float32 results go through ``array('f')`` (round to nearest even,
once per operation, as IEEE float32 arithmetic does: a double +, -, * or / rounded to float32
equals the float32 operation). IEEE behaviour Python refuses (division by zero, exp overflow,
sqrt of a negative) is answered with inf/nan as ONNX Runtime does, never an exception.
"""

from __future__ import annotations

import math
from array import array
from itertools import repeat  # noqa: F401 - names the generated module uses
from math import ceil, floor, tanh, trunc  # noqa: F401
from operator import mul  # noqa: F401

INF, NAN = math.inf, math.nan
_CELL = array("f", (0.0,))


def f32(value: float) -> float:
    """One value rounded to float32."""
    _CELL[0] = value
    return _CELL[0]


def div(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return INF if (a > 0) == (math.copysign(1.0, b) > 0) else -INF


def exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return INF


def log(v: float) -> float:
    if v > 0:
        return math.log(v)
    return -INF if v == 0 else NAN


def sqrt(v: float) -> float:
    return math.sqrt(v) if v >= 0 else (v if v != v else NAN)


def sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + exp(-v))
    e = exp(v)
    return e / (1.0 + e)


def logistic32(v: float) -> float:
    """ONNX Runtime's ComputeLogistic in float32: 1 / (1 + exp(-|v|)), mirrored for v < 0."""
    p = f32(1.0 / f32(1.0 + f32(exp(-abs(v)))))
    return f32(1.0 - p) if v < 0 else p


def softmax(values, rounding: bool) -> list:
    top = max(values)
    exps = [exp(v - top) for v in values]
    if rounding:
        exps = array("f", exps).tolist()
    total = sum(exps)
    return [div(e, total) for e in exps]


def softmax_zero(values) -> list:
    """ONNX Runtime's SOFTMAX_ZERO: values within 1e-7 of zero stay (scaled) zeros."""
    top = max(values)
    scale = exp(-top)
    out, total = [], 0.0
    for v in values:
        if v > 1e-7 or v < -1e-7:
            e = f32(exp(v - top))
            total = f32(total + e)
            out.append(e)
        else:
            out.append(v * scale)
    return [div(v, total) for v in out]


def argmax(values, last: bool = False) -> int:
    best, index = values[0], 0
    for i in range(1, len(values)):
        v = values[i]
        if v > best or (last and v == best):
            best, index = v, i
    return index


def argmin(values, last: bool = False) -> int:
    best, index = values[0], 0
    for i in range(1, len(values)):
        v = values[i]
        if v < best or (last and v == best):
            best, index = v, i
    return index


def post_transform(scores: list, transform: str) -> list:
    """A tree ensemble's or linear classifier's scores after its post_transform (float32)."""
    if transform == "LOGISTIC":
        return [logistic32(s) for s in scores]
    if transform == "SOFTMAX":
        return softmax(scores, True)
    if transform == "SOFTMAX_ZERO":
        return softmax_zero(scores)
    return scores


def binary_scores(score: float, transform: str, second: int) -> list:
    """Two class scores from one (ONNX Runtime's write_scores, binary case): ``second`` 0/1 =
    weights all positive (1 - s, s); 2/3 = mixed weights (-s, s), or logistic of both signs."""
    if second in (0, 1):
        if transform == "LOGISTIC":
            score = logistic32(score)
        return [f32(1.0 - score), score]
    if transform == "LOGISTIC":
        return [logistic32(-score), logistic32(score)]
    if second == 2:
        return [-score, score]
    return [-score, score] if second == 3 else [score]


def tree_classifier_finalize(scores: list, has: tuple, base: tuple, labels: tuple, transform: str, binary: bool, positive: bool) -> tuple:
    """(label, probabilities) of TreeEnsembleClassifier from the summed class scores, finished the
    way ONNX Runtime's TreeAggregatorClassifier finishes them (``has``: which classes any leaf
    weighs; ``binary``: two labels and one weighted class; ``positive``: all weights >= 0)."""
    scores, has = list(scores), list(has)
    if len(labels) > 2:
        for k, b in enumerate(base):
            scores[k], has[k] = f32(scores[k] + b), True
        best = -1
        for i, s in enumerate(scores):
            if has[i] and (best < 0 or s > scores[best]):
                best = i
        return labels[best], array("f", post_transform(scores, transform)).tolist()
    second = -1
    if len(base) == 2:
        if has[1]:
            total = f32(base[1] + scores[0])
            scores = [-total, total]
        else:
            scores = [f32(scores[0] + base[0]), f32(scores[1] + base[1])]
    elif len(base) == 1:
        scores[0] = f32(scores[0] + base[0])
        if not has[1]:
            scores = scores[:1]
    else:
        second = 3
        if not has[1]:
            scores = scores[:1]
    if len(scores) == 2 and has[1]:
        weight = scores[1]
    else:
        weight = scores[0] if has[0] or len(base) else 0.0
    if binary:
        second = (0 if weight > 0.5 else 1) if positive else (2 if weight > 0 else 3)
        label = labels[1] if second in (0, 2) else labels[0]
    else:
        label = labels[1] if weight > 0 else labels[0]
    if len(scores) == 2:
        return label, array("f", post_transform(scores, transform)).tolist()
    return label, array("f", binary_scores(scores[0], transform, second)).tolist()


def linear_classifier_finalize(scores: list, labels: tuple, transform: str) -> tuple:
    """(label, scores) of LinearClassifier (ONNX Runtime's rules: one score and two labels is the
    binary case, positive when the score is above zero)."""
    if len(scores) == 1:
        score = scores[0]
        if len(labels) == 2:
            label = labels[1] if score > 0 else labels[0]
            if transform == "LOGISTIC":
                p = logistic32(score)
                return label, [f32(1.0 - p), p]
            return label, array("f", [f32(1.0 - score), score]).tolist()
        return (1 if score > 0 else 0), array("f", post_transform([score], transform)).tolist()
    best = argmax(scores)
    return labels[best], array("f", post_transform(scores, transform)).tolist()


def normalize(values, norm: str) -> list:
    """ai.onnx.ml Normalizer: MAX, L1 or L2, IEEE division (a zero norm gives inf/nan)."""
    if norm == "MAX":
        scale = max(values)
    elif norm == "L1":
        scale = sum(abs(v) for v in values)
    else:
        scale = math.sqrt(sum(v * v for v in values))
    return [div(v, scale) for v in values]


def one_hot(values, categories: dict, width: int, zeros: bool) -> list:
    """ai.onnx.ml OneHotEncoder: one [width] block per value; unknown values are all zeros when
    ``zeros`` is set, an error otherwise."""
    out = []
    for value in values:
        block = [0.0] * width
        index = categories.get(value)
        if index is not None:
            block[index] = 1.0
        elif not zeros:
            raise ValueError(f"OneHotEncoder: unknown category {value!r}")
        out.extend(block)
    return out


def category_int(value) -> int:
    """A numeric value as OneHotEncoder compares it with integer categories."""
    return int(value) if value == value and abs(value) != INF else value


def dot32(x, coefficients) -> float:
    """A float32 dot product as ONNX Runtime's GEMM computes one row: fused multiply-adds in order
    (the product is exact in a double; one rounding to float32 per step)."""
    cell, acc = _CELL, 0.0
    for a, b in zip(x, coefficients):
        cell[0] = acc + a * b
        acc = cell[0]
    return acc
