"""Emitters for the ai.onnx.ml preprocessing and linear operators (Scaler, Imputer, Normalizer,
Binarizer, OneHotEncoder, LabelEncoder, ArrayFeatureExtractor, ZipMap, LinearClassifier,
LinearRegressor), with ONNX Runtime's types: their float outputs are float32."""

from __future__ import annotations

import numpy as np

from mpack.packager.micro.program import FLOATS, Program, Unsupported, Value, literal


def _row(x: Value, op: str) -> Value:
    if not x.is_row:
        raise Unsupported(f"{op} of a constant")
    return x


def _per_feature(program: Program, values, size: int, op: str) -> str:
    values = list(values)
    if len(values) == 1:
        values = values * size
    if len(values) != size:
        raise Unsupported(f"{op} with {len(values)} values for rows of {size}")
    return program.constant(np.asarray(values, dtype=np.float64), "float64").expr


def emit_scaler(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "Scaler")
    offset = _per_feature(program, attrs.get("offset", [0.0]), x.size, "Scaler")
    scale = _per_feature(program, attrs.get("scale", [1.0]), x.size, "Scaler")
    shifted = x if x.dtype == "float32" else None
    if shifted is not None:  # float input: (x - offset) rounded to float32, then * scale
        shifted = program.row(f"[p - o for p, o in zip({x.expr}, {offset})]", "float32", x.shape)
        return [program.row(f"[p * s for p, s in zip({shifted.expr}, {scale})]", "float32", x.shape)]
    return [program.row(f"[(p - o) * s for p, o, s in zip({x.expr}, {offset}, {scale})]", "float32", x.shape)]


def emit_imputer(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "Imputer")
    if x.dtype not in FLOATS:
        raise Unsupported(f"Imputer of {x.dtype}")
    imputed = _per_feature(program, attrs.get("imputed_value_floats", []), x.size, "Imputer")
    replaced = attrs.get("replaced_value_float", float("nan"))
    test = "p != p" if replaced != replaced else f"p == {literal(replaced)}"
    return [program.row(f"[i if {test} else p for p, i in zip({x.expr}, {imputed})]", "float32", x.shape)]


def emit_normalizer(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "Normalizer")
    if len(x.shape) != 1:
        raise Unsupported("Normalizer of other than [rows, n]")
    return [program.row(f"normalize({x.expr}, {attrs.get('norm', 'MAX')!r})", "float32", x.shape)]


def emit_binarizer(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "Binarizer")
    threshold = literal(attrs.get("threshold", 0.0))
    return [program.row(f"[1.0 if p > {threshold} else 0.0 for p in {x.expr}]", x.dtype, x.shape)]


def emit_one_hot(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "OneHotEncoder")
    categories = attrs.get("cats_strings") or attrs.get("cats_int64s")
    if not categories:
        raise Unsupported("OneHotEncoder without categories")
    strings = "cats_strings" in attrs
    if strings != (x.dtype == "string"):
        raise Unsupported(f"OneHotEncoder of {x.dtype} with {'string' if strings else 'integer'} categories")
    table = program.fresh("H")
    program.constants.append(f"{table} = {{{', '.join(f'{literal(c)}: {i}' for i, c in enumerate(categories))}}}")
    values = x.expr if strings or x.dtype not in FLOATS else f"[category_int(p) for p in {x.expr}]"
    zeros = bool(attrs.get("zeros", 1))
    return [program.row(f"one_hot({values}, {table}, {len(categories)}, {zeros})", "float32", (*x.shape, len(categories)))]


LABEL_KEYS = {"keys_strings": "string", "keys_int64s": "int64", "keys_floats": "float32"}
LABEL_VALUES = {"values_strings": "string", "values_int64s": "int64", "values_floats": "float32"}


def emit_label_encoder(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "LabelEncoder")
    if "classes_strings" in attrs:  # opset 1: strings <-> their index
        classes = attrs["classes_strings"]
        if x.dtype == "string":
            keys, values, out = classes, list(range(len(classes))), "int64"
            default = attrs.get("default_int64", -1)
        else:
            keys, values, out = list(range(len(classes))), classes, "string"
            default = attrs.get("default_string", "_Unused")
    else:
        key_name = next((k for k in LABEL_KEYS if k in attrs), None)
        value_name = next((k for k in LABEL_VALUES if k in attrs), None)
        if key_name is None or value_name is None:
            raise Unsupported("LabelEncoder with tensor keys or values")
        keys, values, out = attrs[key_name], attrs[value_name], LABEL_VALUES[value_name]
        default = attrs.get({"string": "default_string", "int64": "default_int64", "float32": "default_float"}[out], {"string": "_Unused", "int64": -1, "float32": -0.0}[out])
    if any(isinstance(k, float) and k != k for k in keys):
        raise Unsupported("LabelEncoder with a NaN key")
    table = program.fresh("L")
    program.constants.append(f"{table} = {{{', '.join(f'{literal(k)}: {literal(v)}' for k, v in zip(keys, values))}}}")
    return [program.row(f"[{table}.get(p, {literal(default)}) for p in {x.expr}]", out, x.shape)]


def emit_array_feature_extractor(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x, indices = inputs
    if x.is_row and not indices.is_row and len(x.shape) == 1:
        picked = np.asarray(indices.const).reshape(-1).astype(int).tolist()
        return [program.row("[" + ", ".join(f"{x.expr}[{i}]" for i in picked) + "]", x.dtype, (len(picked),))]
    if not x.is_row and indices.is_row and np.asarray(x.const).ndim == 1:
        table = program.constant(x.const, x.dtype)
        return [program.row(f"[{table.expr}[i] for i in {indices.expr}]", x.dtype, indices.shape)]
    raise Unsupported("ArrayFeatureExtractor other than of columns by constant indices or of labels by row indices")


def emit_zipmap(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "ZipMap")
    labels = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s")
    table = program.constant(np.asarray(labels, dtype=object if "classlabels_strings" in attrs else np.int64), "string")
    name = program.fresh()
    program.emit(f"{name} = dict(zip({table.expr}, {x.expr}))")
    return [Value(name, "map", ())]


def _linear_scores(program: Program, x: Value, attrs: dict, targets: int, op: str) -> Value:
    if len(x.shape) != 1:
        raise Unsupported(f"{op} of other than [rows, n]")
    coefficients = np.asarray(attrs["coefficients"], dtype=np.float64).reshape(targets, x.size)
    intercepts = list(attrs.get("intercepts", [])) or [0.0] * targets
    rows = program.fresh("W")
    program.constants.append(f"{rows} = ({', '.join('(' + ', '.join(literal(c) for c in row) + ',)' for row in coefficients)},)")
    bias = program.constant(np.asarray(intercepts, dtype=np.float64), "float64").expr
    features = x.expr if x.dtype == "float32" else f"array('f', {x.expr})"  # ONNX Runtime computes in float
    return program.row(f"[dot32({features}, c) + b for c, b in zip({rows}, {bias})]", "float32", (targets,))


def emit_linear_regressor(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "LinearRegressor")
    if attrs.get("post_transform", "NONE") != "NONE":
        raise Unsupported(f"LinearRegressor post_transform {attrs['post_transform']}")
    return [_linear_scores(program, x, attrs, attrs.get("targets", 1), "LinearRegressor")]


def emit_linear_classifier(program: Program, inputs: list[Value], attrs: dict) -> list[Value]:
    x = _row(inputs[0], "LinearClassifier")
    transform = attrs.get("post_transform", "NONE")
    if transform not in ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        raise Unsupported(f"LinearClassifier post_transform {transform}")
    strings = "classlabels_strings" in attrs
    labels = attrs.get("classlabels_strings") or attrs.get("classlabels_ints") or []
    targets = len(attrs.get("intercepts", [])) or len(labels)
    scores = _linear_scores(program, x, attrs, targets, "LinearClassifier")
    table = program.constant(np.asarray(labels, dtype=object if strings else np.int64), "string" if strings else "int64")
    pair = program.fresh("p")
    program.emit(f"{pair} = linear_classifier_finalize({scores.expr}, {table.expr}, {transform!r})")
    width = 2 if targets == 1 and len(labels) == 2 else targets
    return [Value(f"[{pair}[0]]", "string" if strings else "int64", ()), Value(f"{pair}[1]", "float32", (width,))]


OPERATORS = {
    "Scaler": emit_scaler,
    "Imputer": emit_imputer,
    "Normalizer": emit_normalizer,
    "Binarizer": emit_binarizer,
    "OneHotEncoder": emit_one_hot,
    "LabelEncoder": emit_label_encoder,
    "ArrayFeatureExtractor": emit_array_feature_extractor,
    "ZipMap": emit_zipmap,
    "LinearRegressor": emit_linear_regressor,
    "LinearClassifier": emit_linear_classifier,
}
