"""mpack.json through its one class: schema 2 lists models, schema 1 (every bundle built before) still
reads, as one model, and the scoring core sees the same single-model view from either."""

from __future__ import annotations

import copy
import json

import pytest
from mpack.handlers.manifest import SCHEMA_VERSION, Manifest, ManifestError, ModelInfo
from mpack.packager.bundle.manifest import manifest_bytes

SIGNATURE = {"layout": "columns", "columns": [{"name": "f0", "dtype": "double"}], "inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 1]}], "outputs": ["label", "probabilities"]}
PREDICTION = {"default": "predict", "methods": {"predict": ["label"], "predict_proba": ["probabilities"]}}
IDENTITY = {"name": "fraud", "version": "3", "source": "models:/fraud/3", "flavor": "sklearn", "task": "classifier", "file": "model.onnx", "sha256": "ab" * 32}
EXAMPLE = {"dataframe_split": {"columns": ["f0"], "data": [[1.0]]}}

# what mpack wrote before models were listed (commit f1e3de4), with a field this reader does not know
SCHEMA_1 = {
    "schema": 1,
    "mpack_version": "0.1.0",
    "target": "lambda",
    "handler": "mpack_handler.handler",
    "model": IDENTITY,
    "signature": SIGNATURE,
    "prediction": PREDICTION,
    "runtime": {"python": "3.11", "arch": "x86_64", "onnxruntime": "1.16.3", "numpy": "1.26.4"},
    "converter": {"skl2onnx": "1.17.0"},
    "build": {"target": "lambda", "tolerance": 1e-5},
    "input_example": EXAMPLE,
    "micro": {"inputs": ["input"], "operators": ["TreeEnsembleClassifier"]},
    "later_field": {"kept": True},
}


def test_a_schema_1_manifest_serves_the_view_it_always_did():
    manifest = Manifest.from_bytes(json.dumps(SCHEMA_1).encode())
    assert manifest.schema == 1 and len(manifest.models) == 1 and manifest.models[0].name == "fraud"
    assert manifest.served() == SCHEMA_1  # the document as read before, field for field
    assert manifest.models[0].micro == SCHEMA_1["micro"] and manifest.models[0].native is None and "native" not in manifest.served()
    written = json.loads(manifest.to_bytes())  # written again, it is schema 2 with one entry
    assert written["schema"] == SCHEMA_VERSION == 2 and "model" not in written and "signature" not in written
    assert written["models"] == [{**IDENTITY, "signature": SIGNATURE, "prediction": PREDICTION, "converter": {"skl2onnx": "1.17.0"}, "micro": SCHEMA_1["micro"]}]
    assert written["later_field"] == {"kept": True}
    assert Manifest.from_bytes(manifest.to_bytes()).served() == {**manifest.served(), "schema": 2}


def test_schema_2_round_trips_byte_for_byte_and_keeps_fields_it_does_not_know():
    models = [
        ModelInfo(**IDENTITY, signature=SIGNATURE, prediction=PREDICTION, converter={"skl2onnx": "1.17.0"}),
        ModelInfo(**{**IDENTITY, "name": "scorer", "file": "scorer.pkl"}, signature=SIGNATURE, prediction=PREDICTION, native={"format": "skops"}, extra={"role": "second"}),
    ]
    top = {"mpack_version": "0.2.0", "target": "container", "handler": "mpack.handlers.container_main", "runtime": {"python": "3.12"}, "build": {}, "input_example": EXAMPLE}
    manifest = Manifest(models=models, extra={"profile": "p.json"}, **top)
    data = manifest.to_bytes()
    document = json.loads(data)
    assert document["schema"] == 2 and [m["name"] for m in document["models"]] == ["fraud", "scorer"] and document["profile"] == "p.json"
    assert list(document) == sorted(document) and data.endswith(b"}\n")  # deterministic: sorted keys
    again = Manifest.from_bytes(data)
    assert again.to_bytes() == data and again.schema == 2
    first, second = again.served(0), again.served(1)
    assert first["model"] == IDENTITY and "native" not in first and first["input_example"] == EXAMPLE and first["profile"] == "p.json"
    assert second["model"]["file"] == "scorer.pkl" and second["native"] == {"format": "skops"} and second["role"] == "second"
    assert manifest_bytes(manifest) == data


def test_the_served_view_goes_back_to_the_same_bytes():
    """The pipeline holds a served view (build_manifest) and writes it with manifest_bytes."""
    view = Manifest.from_dict(SCHEMA_1).served()
    assert json.loads(manifest_bytes(view)) == json.loads(Manifest.from_dict(SCHEMA_1).to_bytes())


def test_a_newer_schema_is_refused_with_what_to_do():
    with pytest.raises(ManifestError, match=r"has schema 3; this mpack reads schema 2 and older: rebuild the bundle or upgrade mpack"):
        Manifest.from_dict({**SCHEMA_1, "schema": 3})
    for schema in ("2", True, None):
        with pytest.raises(ManifestError, match="has schema"):
            Manifest.from_dict({**SCHEMA_1, "schema": schema})


@pytest.mark.parametrize("field", ["sha256", "file", "signature", "prediction"])
def test_a_model_entry_missing_a_field_is_refused_by_its_name(field):
    document = json.loads(Manifest.from_dict(SCHEMA_1).to_bytes())
    broken = copy.deepcopy(document)
    del broken["models"][0][field]
    with pytest.raises(ManifestError, match=rf"bundle models\[0\] \(fraud\) lacks '{field}'"):
        Manifest.from_dict(broken, "bundle")


def test_a_schema_2_manifest_without_models_is_refused():
    document = json.loads(Manifest.from_dict(SCHEMA_1).to_bytes())
    with pytest.raises(ManifestError, match="lists no models"):
        Manifest.from_dict({**document, "models": []})
    with pytest.raises(ManifestError, match="lacks 'models'"):
        Manifest.from_dict({k: v for k, v in document.items() if k != "models"} | {"schema": 2})
    with pytest.raises(ManifestError, match=r"models\[0\] is not a JSON object"):
        Manifest.from_dict({**document, "models": ["fraud"]})
    with pytest.raises(ManifestError, match="lacks 'model'"):  # schema 1: its one model
        Manifest.from_dict({k: v for k, v in SCHEMA_1.items() if k != "model"})
