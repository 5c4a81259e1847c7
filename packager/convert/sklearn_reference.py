"""A fitted scikit-learn model as the parity gate's reference, shared by the two ways it ships: converted
to ONNX (sklearn.py) and as itself (native.py). Its answers per predict method, the columns it reads
when it has no signature, the columns where it accepts missing values, and its name in messages."""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.source.examples import typed_frame
from mpack.packager.source.mlmodel import Column

FLOAT_TYPES = ("double", "float")


class SklearnReference:
    """The original estimator's answers, per predict method, on records."""

    def __init__(self, estimator, columns) -> None:
        self.estimator = estimator
        self.columns = columns
        self.by_name = getattr(estimator, "feature_names_in_", None) is not None

    def frame(self, records):
        frame = typed_frame(self.columns, records)
        return frame if self.by_name else frame.to_numpy()

    def __call__(self, records) -> dict:
        features = self.frame(records)
        answers = {"predict": self.estimator.predict(features)}
        if hasattr(self.estimator, "predict_proba"):
            answers["predict_proba"] = self.estimator.predict_proba(features)
        return answers


def columns_from_estimator(estimator) -> tuple[Column, ...]:
    """The features the model was fitted with (as doubles), for a model logged without a signature."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return tuple(Column(str(n), "double") for n in names)
    count = getattr(estimator, "n_features_in_", None)
    if count:
        return tuple(Column(f"f{i}", "double") for i in range(int(count)))
    raise MpackError("the model has no signature and does not record its input features", "log the model with a signature or an input_example")


def columns_accepting_missing(reference: SklearnReference, columns, records) -> set[str]:
    """Float columns where the original model accepts NaN (e.g. behind an imputer) and string
    columns where it accepts null (e.g. an encoder ignoring unknown categories), found by asking it.
    The parity gate then checks the converted graph on rows with those values missing."""
    if not records:
        return set()
    accepted = set()
    for column in columns:
        if column.type not in FLOAT_TYPES + ("string",):
            continue
        probe = dict(records[0], **{column.name: None})
        try:
            reference.estimator.predict(reference.frame([probe]))
        except Exception:  # scikit-learn refuses with ValueError, TypeError (None among strings)...
            continue
        accepted.add(column.name)
    return accepted


def describe_estimator(estimator) -> str:
    """The estimator's class, or a Pipeline's steps, for the manifest and for messages."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return "Pipeline(" + ", ".join(type(step).__name__ for _, step in estimator.steps) + ")"
    return type(estimator).__name__
