"""LightGBM's pandas ``category`` columns of strings, encoded in the graph exactly as LightGBM encodes them.

LightGBM keeps the category lists of the DataFrame it was fitted on (``pandas_categorical``: one list
per category column, in the frame's column order) and re-codes every category column against them
before its trees: a string becomes its position in the stored list; an unseen string or a null
becomes NaN (pandas' code -1). Its categorical splits send NaN to the right child (LightGBM >= 4:
``CategoricalDecision``), its numeric splits (a category column not declared categorical) down their
missing branch. The graph does the same: a LabelEncoder (string -> position, else -1), -1 -> NaN,
then the columns joined into the matrix the trees read. onnxmltools unfolds a categorical split
``a||b||c`` into a chain of BRANCH_EQ nodes, exact on these integer codes; NaN fails every equality
and leaves the chain by its last false branch, the right child.
"""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.source.examples import typed_frame
from mpack.packager.source.mlmodel import Column

UNSEEN_CATEGORY = "mpack-unseen-category"
ROWS_PER_CATEGORY = 3  # each category on a few different base rows: different paths through the trees


def category_lists(booster, columns: tuple[Column, ...]) -> dict[str, list[str]]:
    """String column name -> the categories LightGBM stored for it, in code order ({} for none)."""
    strings = [c for c in columns if c.type == "string"]
    stored = getattr(booster, "pandas_categorical", None) or []
    if not strings and not stored:
        return {}
    if not strings:
        raise MpackError(
            f"the LightGBM model was trained with {len(stored)} pandas category column(s), but neither its signature nor its input example says which columns hold them",
            "log the model with a signature (signature=infer_signature(X, model.predict(X))) or an input example",
        )
    if len(stored) != len(strings) or not all(all(isinstance(v, str) for v in categories) for categories in stored):
        kinds = ", ".join(c.name for c in strings)
        raise MpackError(
            f"the LightGBM model's string column(s) {kinds} do not match the category lists it stores ({len(stored)} pandas category column(s), not all of strings)",
            "train on a DataFrame whose string columns are pandas 'category' columns, or encode them as numbers before the model",
        )
    return {column.name: list(categories) for column, categories in zip(strings, stored)}


def typed_by_example(columns: tuple[Column, ...], example) -> tuple[Column, ...]:
    """Columns known only by the model's feature names (no signature: MLflow infers none for a
    category model, its predict refuses the example's plain strings): those holding strings in the
    input example are string columns."""
    holds_strings = {name for record in example or () for name, value in record.items() if isinstance(value, str)}
    return tuple(Column(c.name, "string") if c.name in holds_strings else c for c in columns)


def categorical_frame(columns: tuple[Column, ...], records, lists: dict[str, list[str]]):
    """What LightGBM is fed: the signature-typed DataFrame with each string column as a pandas
    category column (LightGBM re-codes it against its stored lists itself: unseen and null -> NaN)."""
    frame = typed_frame(columns, records)
    for name in lists:
        frame[name] = frame[name].astype("category")
    return frame


def accepts_null(categories: list[str]) -> bool:
    """The bundle feeds "" for a null string (signature.MISSING_STRING): right only while "" is no category."""
    return "" not in categories


def category_records(columns: tuple[Column, ...], lists: dict[str, list[str]], base_records) -> tuple[dict, ...]:
    """Base records with each string column set to every stored category in turn, then to an unseen
    one, "" and null: the rows where an encoding that differs from LightGBM's would show."""
    if not lists or not base_records:
        return ()
    rows, position = [], 0
    for name, categories in lists.items():
        values = [value for value in categories for _ in range(ROWS_PER_CATEGORY)] + [UNSEEN_CATEGORY, "", None] * ROWS_PER_CATEGORY
        for value in values:
            rows.append(dict(base_records[position % len(base_records)], **{name: value}))
            position += 1
    return tuple(rows)


def encode_categories(graph, columns: tuple[Column, ...], lists: dict[str, list[str]], dtype: str) -> None:
    """Replace the graph's [rows, columns] matrix input with one [rows, 1] input per column, named
    as the signature names them: numbers as they are, strings through LightGBM's category codes."""
    import numpy as np
    from onnx import TensorProto, helper

    element = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    matrix = graph.graph.input[0].name
    taken = {n for node in graph.graph.node for n in list(node.input) + list(node.output)} | {i.name for i in graph.graph.initializer} | {o.name for o in graph.graph.output}
    clashing = sorted({c.name for c in columns} & (taken - {matrix}))
    if clashing:
        raise MpackError(f"LightGBM column name(s) {', '.join(clashing)} clash with names inside the converted graph", "rename the column(s) before logging the model")
    inner = "mpack_lightgbm_matrix"
    for node in graph.graph.node:
        node.input[:] = [inner if name == matrix else name for name in node.input]
    del graph.graph.input[:]
    graph.graph.initializer.extend(
        [
            helper.make_tensor("mpack_no_category", TensorProto.INT64, [], [0]),
            helper.make_tensor("mpack_missing_code", element, [], [np.nan]),
        ]
    )
    nodes, parts = [], []
    for index, column in enumerate(columns):
        if column.name not in lists:
            graph.graph.input.append(helper.make_tensor_value_info(column.name, element, [None, 1]))
            parts.append(column.name)
            continue
        graph.graph.input.append(helper.make_tensor_value_info(column.name, TensorProto.STRING, [None, 1]))
        codes, numbers, unseen, part = (f"mpack_category_{name}_{index}" for name in ("codes", "numbers", "unseen", "feature"))
        categories = lists[column.name]
        nodes += [
            helper.make_node(
                "LabelEncoder", [column.name], [codes], domain="ai.onnx.ml", keys_strings=categories, values_int64s=list(range(len(categories))), default_int64=-1, name=codes
            ),
            helper.make_node("Cast", [codes], [numbers], to=element, name=numbers),
            helper.make_node("Less", [codes, "mpack_no_category"], [unseen], name=unseen),
            helper.make_node("Where", [unseen, "mpack_missing_code", numbers], [part], name=part),
        ]
        parts.append(part)
    nodes.append(helper.make_node("Concat", parts, [inner], axis=1, name="mpack_lightgbm_columns"))
    for position, node in enumerate(nodes):
        graph.graph.node.insert(position, node)


def categorical_missing_right(graph) -> None:
    """NaN leaves every BRANCH_EQ node by its false branch: LightGBM sends a missing category right
    whatever the split's default_left, which onnxmltools would otherwise copy into the chain."""
    from onnx import helper

    for node in graph.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if "nodes_missing_value_tracks_true" not in values:
            continue
        tracks = [0 if mode == b"BRANCH_EQ" else track for mode, track in zip(values["nodes_modes"], values["nodes_missing_value_tracks_true"])]
        kept = [a for a in node.attribute if a.name != "nodes_missing_value_tracks_true"]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute("nodes_missing_value_tracks_true", tracks)])


def categories_read_as_integers(graph, tree, coded: frozenset = frozenset()) -> None:
    """A categorical feature as LightGBM reads it: ``int(x)`` (toward zero), a value at or below -1
    -> the right child. The BRANCH_EQ chain compares exactly, so without this a number category fed
    2.7 (or -0.5) would miss the category 2 (or 0) LightGBM finds. ``coded``: features that are
    string codes already (whole numbers or NaN), left out."""
    import numpy as np
    from onnx import TensorProto, helper

    values = {a.name: helper.get_attribute_value(a) for a in tree.attribute}
    categorical = sorted({f for f, mode in zip(values["nodes_featureids"], values["nodes_modes"]) if mode == b"BRANCH_EQ"} - coded)
    width = graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    if not categorical or not width or max(categorical) >= width:
        return
    features = tree.input[0]
    mask = np.zeros((1, width), dtype=bool)
    mask[0, categorical] = True
    graph.graph.initializer.extend(
        [
            helper.make_tensor("mpack_categorical_features", TensorProto.BOOL, [1, width], mask.ravel().tolist()),
            helper.make_tensor("mpack_category_floor", TensorProto.DOUBLE, [], [-1.0]),
            helper.make_tensor("mpack_category_missing", TensorProto.DOUBLE, [], [np.nan]),
        ]
    )
    tree.input[0] = "mpack_lightgbm_categories"
    nodes = [
        helper.make_node("Relu", [features], ["mpack_category_nonnegative"], name="mpack_category_nonnegative"),
        helper.make_node("Floor", ["mpack_category_nonnegative"], ["mpack_category_truncated"], name="mpack_category_truncated"),
        helper.make_node("Greater", [features, "mpack_category_floor"], ["mpack_category_found"], name="mpack_category_found"),
        helper.make_node("Where", ["mpack_category_found", "mpack_category_truncated", "mpack_category_missing"], ["mpack_category_integers"], name="mpack_category_integers"),
        helper.make_node("Where", ["mpack_categorical_features", "mpack_category_integers", features], ["mpack_lightgbm_categories"], name="mpack_category_as_read"),
    ]
    position = max((i + 1 for i, node in enumerate(graph.graph.node) if features in node.output), default=0)
    for offset, node in enumerate(nodes):
        graph.graph.node.insert(position + offset, node)
