"""A classifier graph's labels chosen as scikit-learn chooses them. Used by every tree converter (scikit-learn,
XGBoost, LightGBM, CatBoost wrappers), so it lives apart from any one of them."""

from __future__ import annotations

import numpy as np


def first_maximum_labels(model, classes) -> None:
    """Labels as scikit-learn picks them, ``classes_[argmax(proba)]`` with the first class winning an
    exact tie (a 20-of-40-trees vote), instead of the tree operator's own choice."""
    from onnx import helper, numpy_helper

    outputs = [o.name for o in model.graph.output]
    if len(outputs) != 2:
        return
    label, probabilities = outputs
    classes = np.asarray(classes)
    values = classes.astype(object) if classes.dtype.kind in "OUS" else classes.astype(np.int64)
    producer = next(n for n in model.graph.node if label in n.output)
    producer.output[list(producer.output).index(label)] = "mpack_operator_label"
    model.graph.initializer.append(numpy_helper.from_array(np.array(values.tolist(), dtype=object if classes.dtype.kind in "OUS" else np.int64), "mpack_classes"))
    model.graph.node.extend(
        [
            helper.make_node("ArgMax", [probabilities], ["mpack_first_maximum"], axis=1, keepdims=0, select_last_index=0, name="mpack_argmax"),
            helper.make_node("Gather", ["mpack_classes", "mpack_first_maximum"], [label], axis=0, name="mpack_label"),
        ]
    )
