"""Tree ensembles compiled to Python: every tree a nest of ``if`` statements on local variables
(about 10 us for 200 depth-3 trees, where walking node tables costs ~20x more), leaves adding
their weights into float32 cells (``array('f')``) when ONNX Runtime sums in float, so the sum
rounds after every tree exactly as it does.

Covers ai.onnx.ml TreeEnsembleClassifier and TreeEnsembleRegressor (opsets 1 and 3, ``*_as_tensor``
double attributes included) and TreeEnsemble (opset 5). Very deep trees (over ``MAX_NESTING``
levels, beyond what Python's parser nests) are refused by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mpack.packager.micro.program import Program, Unsupported, Value, literal

MAX_NESTING = 80
CONDITIONS = {"BRANCH_LEQ": "{x} <= {t}", "BRANCH_LT": "{x} < {t}", "BRANCH_GTE": "{x} >= {t}", "BRANCH_GT": "{x} > {t}", "BRANCH_EQ": "{x} == {t}", "BRANCH_NEQ": "{x} != {t}"}
V5_MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER")
V5_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
V5_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")


@dataclass
class Leaf:
    weights: list = field(default_factory=list)  # (target or class index, weight)


@dataclass
class Split:
    feature: int
    condition: str  # a CONDITIONS template, or "member"
    threshold: object  # a number, or the set of members
    true: object
    false: object
    missing_true: bool


@dataclass
class Ensemble:
    trees: list  # roots
    targets: int
    double: bool  # sums (and thresholds) in float64; else float32


def _attr(attrs: dict, name: str, default=None):
    """An attribute, preferring its ``*_as_tensor`` double form."""
    tensor = attrs.get(f"{name}_as_tensor")
    if tensor is not None:
        from onnx import numpy_helper

        return numpy_helper.to_array(tensor).astype(np.float64).tolist()
    return attrs.get(name, default)


def _v3_trees(attrs: dict, prefix: str) -> list:
    """Roots of the trees of a TreeEnsembleClassifier/Regressor, nodes linked, leaves weighted."""
    tree_ids, node_ids = attrs["nodes_treeids"], attrs["nodes_nodeids"]
    values = _attr(attrs, "nodes_values", [0.0] * len(tree_ids))
    modes = [m.decode() if isinstance(m, bytes) else m for m in attrs["nodes_modes"]]
    missing = attrs.get("nodes_missing_value_tracks_true") or [0] * len(tree_ids)
    nodes: dict = {}
    for i, (tree, node) in enumerate(zip(tree_ids, node_ids)):
        if modes[i] == "LEAF":
            nodes[tree, node] = Leaf()
        elif modes[i] in CONDITIONS:
            nodes[tree, node] = Split(attrs["nodes_featureids"][i], CONDITIONS[modes[i]], values[i], attrs["nodes_truenodeids"][i], attrs["nodes_falsenodeids"][i], bool(missing[i]))
        else:
            raise Unsupported(f"tree node mode {modes[i]}")
    children = {(tree, child) for (tree, _), node in nodes.items() if isinstance(node, Split) for child in (node.true, node.false)}
    for (tree, _), node in nodes.items():
        if isinstance(node, Split):
            try:
                node.true, node.false = nodes[tree, node.true], nodes[tree, node.false]
            except KeyError as missing:
                raise Unsupported(f"tree {tree} refers to node {missing}, which it does not have") from None
    weights = _attr(attrs, f"{prefix}_weights")
    for tree, node, target, weight in zip(attrs[f"{prefix}_treeids"], attrs[f"{prefix}_nodeids"], attrs[f"{prefix}_ids"], weights):
        leaf = nodes.get((tree, node))
        if not isinstance(leaf, Leaf):
            raise Unsupported(f"a weight on tree {tree} node {node}, which is not a leaf")
        leaf.weights.append((target, weight))
    roots = {}
    for key, node in nodes.items():
        if key not in children:
            roots.setdefault(key[0], node)
    return list(roots.values())


def _v5_trees(attrs: dict) -> list:
    from onnx import numpy_helper

    splits = numpy_helper.to_array(attrs["nodes_splits"]).astype(np.float64).tolist()
    modes = numpy_helper.to_array(attrs["nodes_modes"]).astype(int).tolist()
    leaf_weights = numpy_helper.to_array(attrs["leaf_weights"]).astype(np.float64).tolist()
    members = numpy_helper.to_array(attrs["membership_values"]).astype(np.float64).tolist() if "membership_values" in attrs else []
    member_sets, current = [], []
    for value in members:
        if math.isnan(value):
            member_sets.append(frozenset(current))
            current = []
        else:
            current.append(value)
    if current:
        member_sets.append(frozenset(current))
    missing = attrs.get("nodes_missing_value_tracks_true") or [0] * len(modes)
    leaves = [Leaf([(target, weight)]) for target, weight in zip(attrs["leaf_targetids"], leaf_weights)]
    nodes, member_index = [], 0
    for i, mode in enumerate(modes):
        if mode == 6:
            if member_index >= len(member_sets):
                raise Unsupported("TreeEnsemble membership_values shorter than its BRANCH_MEMBER nodes")
            condition, threshold = "member", member_sets[member_index]
            member_index += 1
        else:
            condition, threshold = CONDITIONS[V5_MODES[mode]], splits[i]
        nodes.append(Split(attrs["nodes_featureids"][i], condition, threshold, None, None, bool(missing[i])))
    for i, node in enumerate(nodes):
        node.true = leaves[attrs["nodes_truenodeids"][i]] if attrs["nodes_trueleafs"][i] else nodes[attrs["nodes_truenodeids"][i]]
        node.false = leaves[attrs["nodes_falsenodeids"][i]] if attrs["nodes_falseleafs"][i] else nodes[attrs["nodes_falsenodeids"][i]]
    return [nodes[root] for root in attrs["tree_roots"]]


def _depth(node) -> int:
    depth, frontier = 0, [node]
    while frontier:
        depth += 1
        frontier = [c for n in frontier if isinstance(n, Split) for c in (n.true, n.false)]
    return depth


def _emit_tree(node, indent: str, lines: list, features: set, program: Program) -> None:
    if isinstance(node, Leaf):
        for target, weight in node.weights:
            lines.append(f"{indent}c[{target}] += {literal(weight)}")
        if not node.weights:
            lines.append(f"{indent}pass")
        return
    x = f"f{node.feature}"
    features.add(node.feature)
    if node.condition == "member":
        members = program.fresh("S")
        program.constants.append(f"{members} = frozenset(({', '.join(literal(m) for m in sorted(node.threshold))},))")
        test = f"{x} in {members}"
    else:
        test = node.condition.format(x=x, t=literal(node.threshold))
    if node.missing_true:
        test = f"{test} or {x} != {x}"
    lines.append(f"{indent}if {test}:")
    _emit_tree(node.true, indent + "    ", lines, features, program)
    lines.append(f"{indent}else:")
    _emit_tree(node.false, indent + "    ", lines, features, program)


def emit_ensemble(program: Program, x: Value, ensemble: Ensemble) -> str:
    """A function ``name(x)`` returning the summed scores per target; its name is returned."""
    if not x.is_row or len(x.shape) != 1:
        raise Unsupported("a tree ensemble on other than [rows, features]")
    deepest = max((_depth(t) for t in ensemble.trees), default=0)
    if deepest > MAX_NESTING:
        raise Unsupported(f"a tree {deepest} levels deep (the micro runtime compiles trees of up to {MAX_NESTING})")
    name = program.fresh("ensemble")
    body: list[str] = []
    features: set = set()
    for tree in ensemble.trees:
        _emit_tree(tree, "    ", body, features, program)
    if features and max(features) >= x.size:
        raise Unsupported(f"a tree reads feature {max(features)} of rows with {x.size}")
    cells = f"array('d', bytes({8 * ensemble.targets}))" if ensemble.double else f"array('f', bytes({4 * ensemble.targets}))"
    unpack = [f"    f{i} = x[{i}]" for i in sorted(features)]
    program.functions.append("\n".join([f"def {name}(x):", *unpack, f"    c = {cells}", *body, "    return c.tolist()", ""]))
    return name


def _reweigh(trees: list, target: int) -> None:
    """Every leaf weight moved to class ``target``."""
    frontier = list(trees)
    while frontier:
        node = frontier.pop()
        if isinstance(node, Leaf):
            node.weights = [(target, w) for _, w in node.weights]
        else:
            frontier += [node.true, node.false]


def _transform(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def emit_tree_classifier(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _features(program, inputs[0])
    strings = "classlabels_strings" in attrs
    labels = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s")
    transform = _transform(attrs.get("post_transform", "NONE"))
    if transform == "PROBIT":
        raise Unsupported("TreeEnsembleClassifier post_transform PROBIT")
    double = "nodes_values_as_tensor" in attrs or "class_weights_as_tensor" in attrs
    trees = _v3_trees(attrs, "class")
    weighted = sorted(set(attrs["class_ids"]))
    binary = len(labels) == 2 and len(weighted) == 1
    if binary:  # one weighted class of two: its score is the one binary score (ONNX Runtime's rule)
        _reweigh(trees, 0)
        weighted = [0]
    function = emit_ensemble(program, x, Ensemble(trees, len(labels), double))
    has = tuple(i in weighted for i in range(len(labels)))
    base = tuple(_attr(attrs, "base_values", []) or ())
    positive = all(w >= 0 for w in _attr(attrs, "class_weights"))
    table = program.constant(np.asarray(labels, dtype=object if strings else np.int64), "string" if strings else "int64")
    pair = program.fresh("p")
    program.emit(f"{pair} = tree_classifier_finalize({function}({x.expr}), {has!r}, {base!r}, {table.expr}, {transform!r}, {binary}, {positive})")
    return [Value(f"[{pair}[0]]", "string" if strings else "int64", ()), Value(f"{pair}[1]", "float32", (len(labels),))]


def emit_tree_regressor(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _features(program, inputs[0])
    targets = attrs.get("n_targets", 1)
    aggregate = _transform(attrs.get("aggregate_function", "SUM"))
    transform = _transform(attrs.get("post_transform", "NONE"))
    double = "nodes_values_as_tensor" in attrs or "target_weights_as_tensor" in attrs
    trees = _v3_trees(attrs, "target")
    return [_regression(program, x, Ensemble(trees, targets, double), aggregate, transform, tuple(_attr(attrs, "base_values", []) or ()), "float64" if double else "float32")]


def emit_tree_ensemble(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    """ai.onnx.ml TreeEnsemble (opset 5): sums in the input's type."""
    x = _features(program, inputs[0])
    aggregate = V5_AGGREGATES[attrs.get("aggregate_function", 1)]
    transform = V5_TRANSFORMS[attrs.get("post_transform", 0)]
    ensemble = Ensemble(_v5_trees(attrs), attrs["n_targets"], x.dtype == "float64")
    return [_regression(program, x, ensemble, aggregate, transform, (), x.dtype)]


def _regression(program: Program, x: Value, ensemble: Ensemble, aggregate: str, transform: str, base: tuple, dtype: str) -> Value:
    if aggregate not in ("SUM", "AVERAGE"):
        raise Unsupported(f"tree ensemble aggregate_function {aggregate}")
    if transform == "PROBIT" or (transform != "NONE" and ensemble.targets == 1):
        raise Unsupported(f"tree ensemble post_transform {transform}")
    function = emit_ensemble(program, x, ensemble)
    scores = program.row(f"{function}({x.expr})", dtype, (ensemble.targets,))
    if aggregate == "AVERAGE":
        scores = program.row(f"[s / {len(ensemble.trees)} for s in {scores.expr}]", dtype, scores.shape)
    if len(base) == 1 and ensemble.targets == 1 or len(base) == ensemble.targets and base:
        table = program.constant(np.asarray(base, dtype=np.float64), "float64")
        scores = program.row(f"[s + b for s, b in zip({scores.expr}, {table.expr})]", dtype, scores.shape)
    if transform != "NONE":
        scores = program.row(f"post_transform({scores.expr}, {transform!r})", dtype, scores.shape)
    return scores


def _features(program: Program, x: Value) -> Value:
    """Tree inputs: floats as they are; integers compared as ONNX Runtime compares them, in float."""
    if not x.is_row:
        raise Unsupported("a tree ensemble on a constant")
    if x.dtype in ("float32", "float64"):
        return x
    if x.dtype == "string":
        raise Unsupported("a tree ensemble on strings")
    return program.row(f"[float(v) for v in {x.expr}]", "float32", x.shape)


OPERATORS = {
    "TreeEnsembleClassifier": emit_tree_classifier,
    "TreeEnsembleRegressor": emit_tree_regressor,
    "TreeEnsemble": emit_tree_ensemble,
}
