"""Rows placed exactly at a tree model's own decision thresholds, in the model's raw input space.

Random rows almost never land on a split value; real traffic does (round amounts, ages, counts), and
that is where a graph that rounds or orders its arithmetic differently from scikit-learn flips a
branch. For each split (feature, threshold) of the final tree estimator, the raw column that feeds the
feature is found by perturbation through the preprocessing steps, then bisection over the column's
representable values (float64 or float32, by the signature) finds the two adjacent inputs on either
side of the split — once for a float32 comparison (scikit-learn's trees) and once for a float64 one
(HistGradientBoosting). Works for any preprocessing that is monotone per column (scalers, imputers);
columns it cannot place are simply not probed.
"""

from __future__ import annotations

import random

import numpy as np

MAX_SPLITS = 600  # splits probed (sampled evenly when a forest has more)
BISECTION_STEPS = 66  # enough to close any float64 interval in ordered-integer space
SPAN = 1e15


def tree_splits(estimator) -> list[tuple[int, float]]:
    """(feature index, threshold) of every split in a fitted scikit-learn tree model (or an XGBoost/
    LightGBM scikit-learn wrapper), deduplicated."""
    from mpack.packager.convert.sklearn_boosting import boosting_kind, boosting_splits

    if boosting_kind(estimator):
        return boosting_splits(estimator)
    trees = []
    for candidate in _flatten(getattr(estimator, "estimators_", None)) or [estimator]:
        if hasattr(candidate, "tree_"):
            trees.append((candidate.tree_.feature, candidate.tree_.threshold))
    for predictor in _flatten(getattr(estimator, "_predictors", None)):
        nodes = predictor.nodes
        inner = ~nodes["is_leaf"].astype(bool)
        trees.append((nodes["feature_idx"][inner], nodes["num_threshold"][inner]))
    splits = set()
    for features, thresholds in trees:
        for feature, threshold in zip(np.asarray(features), np.asarray(thresholds)):
            if feature >= 0 and np.isfinite(threshold):
                splits.add((int(feature), float(threshold)))
    return sorted(splits)


def _flatten(value) -> list:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    if isinstance(value, (list, tuple)):
        return [item for element in value for item in _flatten(element)]
    return [value]


def threshold_records(estimator, columns, base_records, frame_of, seed: int = 0) -> tuple[dict, ...]:
    """Records on both sides of each split of ``estimator``'s final tree step.

    ``frame_of(records)`` builds what the estimator is fed (DataFrame or array); ``columns`` are the
    signature's (name, type) columns; ``base_records`` supply the other columns' values.
    """
    final, preprocess = _split_pipeline(estimator)
    splits = tree_splits(final)
    if not splits or not base_records:
        return ()
    rng = random.Random(seed)
    if len(splits) > MAX_SPLITS:
        splits = [splits[i] for i in sorted(rng.sample(range(len(splits)), MAX_SPLITS))]
    base = dict(base_records[0])
    transform = _transformer(preprocess, frame_of)
    feeders = _feeding_columns(transform, base, columns)
    probes = [(feeders[f], f, t) for f, t in splits if f in feeders]
    if not probes:
        return ()
    records: list[dict] = []
    for cast32 in (True, False):
        for column, low, high in _bisect(transform, base, probes, cast32):
            for value in (low, high):
                record = dict(rng.choice(base_records))
                record[column.name] = value
                records.append(record)
    return tuple(records)


def _split_pipeline(estimator):
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator.steps[-1][1], estimator[:-1]
    return estimator, None


def _transformer(preprocess, frame_of):
    def transform(records: list[dict]) -> np.ndarray:
        features = frame_of(records)
        if preprocess is not None:
            features = preprocess.transform(features)
        if hasattr(features, "toarray"):
            features = features.toarray()
        return np.asarray(features, dtype=np.float64).reshape(len(records), -1)

    return transform


def _feeding_columns(transform, base: dict, columns) -> dict:
    """Feature index -> the one numeric column that alone moves it."""
    numeric = [c for c in columns if c.type in ("double", "float")]
    if not numeric:
        return {}
    probes = [base]
    for column in numeric:
        value = base.get(column.name)
        moved = (float(value) if isinstance(value, (int, float)) and value == value else 0.0) * 1.7 + 3.1
        probes.append(dict(base, **{column.name: moved}))
    try:
        out = transform(probes)
    except Exception:  # preprocessing that refuses the probe rows: nothing to place
        return {}
    owners: dict[int, list] = {}
    for index, column in enumerate(numeric, start=1):
        for feature in np.flatnonzero(out[index] != out[0]):
            owners.setdefault(int(feature), []).append(column)
    return {feature: cols[0] for feature, cols in owners.items() if len(cols) == 1}


def _bisect(transform, base: dict, probes, cast32: bool):
    """For each (column, feature, threshold): adjacent representable inputs (low, high) across which
    the comparison ``feature <= threshold`` changes, or nothing where it never changes."""
    columns = [p[0] for p in probes]
    features = np.array([p[1] for p in probes])
    thresholds = np.array([p[2] for p in probes])
    kinds = [np.float32 if c.type == "float" else np.float64 for c in columns]
    low = np.array([_key(-SPAN, k) for k in kinds], dtype=object)
    high = np.array([_key(SPAN, k) for k in kinds], dtype=object)
    rows = np.arange(len(probes))

    def side(keys) -> np.ndarray:
        values = [_value(k, kind) for k, kind in zip(keys, kinds)]
        records = [dict(base, **{c.name: v}) for c, v in zip(columns, values)]
        try:
            out = transform(records)[rows, features]
        except Exception:
            return np.zeros(len(records), dtype=bool)
        if cast32:
            out = out.astype(np.float32).astype(np.float64)
        return out <= thresholds

    at_low, at_high = side(low), side(high)
    active = at_low != at_high
    for _ in range(BISECTION_STEPS):
        gap = np.array([h - lo for lo, h in zip(low, high)], dtype=object)
        if not any(g > 1 for g, a in zip(gap, active) if a):
            break
        middle = np.array([(lo + h) // 2 for lo, h in zip(low, high)], dtype=object)
        at_middle = side(middle)
        move_low = at_middle == at_low
        low = np.where(move_low, middle, low)
        high = np.where(move_low, high, middle)
    for index in np.flatnonzero(active):
        yield columns[index], _value(low[index], kinds[index]), _value(high[index], kinds[index])


def _key(value: float, kind) -> int:
    """A monotone integer key over the representable values of ``kind``."""
    if kind is np.float32:
        bits = int(np.array(value, dtype=np.float32).view(np.int32))
        return bits if bits >= 0 else -(bits & 0x7FFFFFFF)
    bits = int(np.array(value, dtype=np.float64).view(np.int64))
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _value(key: int, kind) -> float:
    if kind is np.float32:
        bits = key if key >= 0 else (-key) | -0x80000000
        return float(np.array(bits, dtype=np.int32).view(np.float32))
    bits = key if key >= 0 else (-key) | -0x8000000000000000
    return float(np.array(bits, dtype=np.int64).view(np.float64))
