"""Rows at the split thresholds of a tree-ensemble graph whose features are the input columns
themselves (XGBoost, LightGBM: no preprocessing before the trees).

The thresholds are read from the converted graph's TreeEnsemble operator (float32 ``nodes_values``
or float64 ``nodes_values_as_tensor``), so this works for any framework whose converter emits one.
Each probed value sits exactly on a split and on both sides of it, in float32 and float64 steps:
the places where a converter that rounds a threshold or an input differently from the framework
sends a row down the other branch.
"""

from __future__ import annotations

import math
import random

import numpy as np

MAX_SPLITS = 600


def graph_splits(graph) -> list[tuple[int, float]]:
    """(feature index, threshold) of every split of every TreeEnsemble node, deduplicated."""
    from onnx import helper, numpy_helper

    splits = set()
    for node in graph.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        values = {a.name: a for a in node.attribute}
        features = helper.get_attribute_value(values["nodes_featureids"]) if "nodes_featureids" in values else []
        if "nodes_values_as_tensor" in values:
            thresholds = numpy_helper.to_array(values["nodes_values_as_tensor"].t).tolist()
        else:
            thresholds = helper.get_attribute_value(values["nodes_values"]) if "nodes_values" in values else []
        modes = helper.get_attribute_value(values["nodes_modes"]) if "nodes_modes" in values else []
        for feature, threshold, mode in zip(features, thresholds, modes):
            if mode not in (b"LEAF", "LEAF") and math.isfinite(threshold):
                splits.add((int(feature), float(threshold)))
    return sorted(splits)


def split_values(threshold: float) -> list[float]:
    """The threshold, and its float32 and float64 neighbours on both sides."""
    t32 = np.float32(threshold)
    values = {threshold, float(t32)}
    for direction in (-np.inf, np.inf):
        values.add(float(np.nextafter(t32, np.float32(direction))))
        values.add(float(np.nextafter(threshold, direction)))
    return sorted(v for v in values if math.isfinite(v))


def graph_threshold_records(graph, columns, base_records, seed: int = 0) -> tuple[dict, ...]:
    """Base records with one column moved onto each split (and its neighbours) in turn."""
    splits = graph_splits(graph)
    if not splits or not base_records:
        return ()
    if len(splits) > MAX_SPLITS:
        splits = random.Random(seed).sample(splits, MAX_SPLITS)
    rows = []
    for index, (feature, threshold) in enumerate(splits):
        if feature >= len(columns):
            continue
        column = columns[feature]
        base = base_records[index % len(base_records)]
        if column.type in ("long", "integer"):
            values = sorted({int(math.floor(threshold)), int(math.ceil(threshold))}) if abs(threshold) < 2**53 else []
        elif column.type in ("double", "float"):
            values = split_values(threshold)
        else:
            values = []
        rows.extend(dict(base, **{column.name: value}) for value in values)
    return tuple(rows)
