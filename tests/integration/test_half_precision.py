"""``--precision fp16`` (gpu target) on a machine without a GPU. The halved graph is made and checked
by the functions the build runs (resolve, convert, optimize, halve, parity) on a real MLflow model
— scored by this machine's CPU onnxruntime, which runs float16 nodes (converting where it has no
half-precision kernel); a GPU computes them natively, and the figures from one belong in bench/
when one is lent. A whole `--target gpu` build downloads onnxruntime-gpu and its CUDA wheels
(gigabytes), so through the CLI only the paths that end before that are run: the refusals and the
parity gate stopping a model that leaves float16's range."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from mpack.handlers.manifest import Manifest
from mpack.handlers.protocol import ScoringService
from mpack.infra.errors import MpackError
from mpack.packager.check.parity import check_parity, parity_requests, scoring_manifest
from mpack.packager.check.scoring import scoring_service
from mpack.packager.convert.optimize import optimize_graph
from mpack.packager.convert.precision import FP16_TOLERANCE, RangeProbe, halve_precision
from mpack.packager.convert.registry import ConversionOptions, LocalConverter, read_model
from mpack.packager.source.resolve import parse_source, resolve
from mpack.packager.targets import get_target
from onnx import TensorProto, helper, numpy_helper

from tests.helpers.asgi import asgi_request, bundle_app
from tests.helpers.bundle_runner import unzip
from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.models import fraud_frame


@pytest.fixture(scope="module")
def mlp(store):
    """A float32-signature MLP classifier, registered as mlp-fp16."""
    import mlflow
    from sklearn.neural_network import MLPClassifier

    frame, labels = fraud_frame(rows=2000, seed=11)
    frame = frame.astype(np.float32)
    estimator = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=300, random_state=0).fit(frame, labels)
    mlflow.set_tracking_uri(store.uri)
    with mlflow.start_run():
        mlflow.sklearn.log_model(estimator, name="model", input_example=frame.head(3), registered_model_name="mlp-fp16", serialization_format="cloudpickle")
    return estimator, frame


def halved(store, tmp_path, uri):
    resolved = resolve(parse_source(uri), tmp_path, store.uri, None)
    model = read_model(resolved)
    converted = LocalConverter().convert(model, model.input_example, ConversionOptions(allow_pickle=True))
    optimized = optimize_graph(converted.onnx_bytes, get_target("gpu").graph_optimization)  # as the build optimizes for a GPU
    return converted, optimized, halve_precision(optimized)


def test_the_halved_graph_keeps_float32_inputs_and_outputs_and_answers_within_its_tolerance(store, mlp, tmp_path):
    estimator, _ = mlp
    converted, full, half = halved(store, tmp_path, "models:/mlp-fp16/1")
    graph = onnx.load_from_string(half).graph
    weights = {t.name: t.data_type for t in graph.initializer}
    assert TensorProto.FLOAT16 in weights.values() and TensorProto.FLOAT not in weights.values()
    assert [i.type.tensor_type.elem_type for i in graph.input] == [TensorProto.FLOAT] * len(graph.input)
    assert {o.type.tensor_type.elem_type for o in graph.output} <= {TensorProto.FLOAT, TensorProto.INT64}
    weight_bytes = lambda data: sum(len(t.raw_data) for t in onnx.load_from_string(data).graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16))
    assert weight_bytes(half) * 2 == weight_bytes(full)

    rows, _ = fraud_frame(rows=2400, seed=12)
    records = rows.astype(np.float32).to_dict("records")
    requests = parity_requests(converted, records, None)
    probe = RangeProbe(half, full)
    assert probe.names, "the probe watches the halved graph's float16 intermediates"
    report = check_parity(converted, half, requests, "fresh rows", FP16_TOLERANCE, records, ScoringService(scoring_manifest(converted), probe), near_ties=FP16_TOLERANCE)
    assert report.passed, report.to_dict()
    assert probe.overflows == {}
    probe.check()
    probabilities = next(o for o in report.outputs if o.method == "predict_proba")
    assert 1e-5 < probabilities.max_scaled_diff <= FP16_TOLERANCE, "half precision moves probabilities, within its own tolerance"
    strict = check_parity(converted, half, requests, "fresh rows", 1e-5, records)
    assert not strict.passed, "at float32's tolerance the halved graph is refused: the tolerance is what lets it through"

    service = scoring_service(scoring_manifest(converted), half)
    answer = service.score_document({"dataframe_split": {"columns": list(rows.columns), "data": rows.astype(np.float32).to_numpy().tolist()}, "params": {"predict_method": "predict_proba"}})
    expected = estimator.predict_proba(rows.astype(np.float32))
    assert answer.ok and np.abs(np.asarray(answer.body["predictions"]) - expected).max() <= FP16_TOLERANCE


def test_the_gpu_server_answers_from_the_halved_graph(store, mlp, built, tmp_path, capfd):
    """The gpu image's own app in process (as in test_gpu_target.py) on a bundle whose model is the
    halved graph and whose manifest says what `--target gpu --precision fp16` writes; with
    MPACK_REQUIRE_GPU=0 it serves from this machine's CPU, its session fused at load."""
    estimator, _ = mlp
    root = unzip(built("models:/mlp-fp16/1", runtime="onnx").artifact, tmp_path)
    _, _, half = halved(store, tmp_path, "models:/mlp-fp16/1")
    manifest = Manifest.from_bytes((root / "mpack.json").read_bytes())
    (root / manifest.models[0].file).write_bytes(half)
    manifest.models[0].sha256 = hashlib.sha256(half).hexdigest()
    manifest.runtime.update(kind="gpu", cuda="13")
    manifest.target = "gpu"
    manifest.build.update(target="gpu", require_gpu=True, precision="fp16", max_batch_size=64, max_batch_wait_ms=2.0)
    (root / "mpack.json").write_bytes(manifest.to_bytes())
    app = bundle_app(root, MPACK_REQUIRE_GPU="0")
    assert "serving from CPUExecutionProvider" in capfd.readouterr().err
    rows = fraud_frame(rows=300, seed=13)[0].astype(np.float32)
    request = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}, "params": {"predict_method": "predict_proba"}}
    status, _, body = asgi_request(app, "POST", "/invocations", {"content-type": "application/json"}, json.dumps(request).encode())
    assert status == 200, body
    answered = np.asarray(json.loads(body)["predictions"])
    assert np.abs(answered - estimator.predict_proba(rows)).max() <= FP16_TOLERANCE


def test_a_label_may_differ_only_where_the_original_cannot_tell_two_classes_apart_in_half_precision(store, mlp, tmp_path):
    """Rows built to sit on the MLP's decision boundary: changed labels are counted as near ties, and
    only rows whose original top two probabilities are within the tolerance qualify."""
    estimator, frame = mlp
    converted, _, half = halved(store, tmp_path, "models:/mlp-fp16/1")
    rng = np.random.default_rng(5)
    a, b = frame.sample(400, random_state=1).to_numpy(), frame.sample(400, random_state=2).to_numpy()
    mixed = []
    for left, right in zip(a, b):  # bisect to the boundary between two rows of different class
        if estimator.predict([left])[0] == estimator.predict([right])[0]:
            continue
        low, high = 0.0, 1.0
        for _ in range(30):
            middle = (low + high) / 2
            same = estimator.predict([left + middle * (right - left)])[0] == estimator.predict([left])[0]
            low, high = (middle, high) if same else (low, middle)
        mixed.append(left + low * (right - left) + rng.normal(scale=1e-4, size=left.shape))
    boundary = np.asarray(mixed, dtype=np.float32)
    assert len(boundary) > 50
    records = [dict(zip(frame.columns, row.tolist())) for row in boundary]
    report = check_parity(converted, half, parity_requests(converted, records, None), "boundary rows", FP16_TOLERANCE, records, near_ties=FP16_TOLERANCE)
    labels = next(o for o in report.outputs if o.method == "predict")
    assert labels.mismatches == 0 and labels.passed
    exact_only = check_parity(converted, half, parity_requests(converted, records, None), "boundary rows", FP16_TOLERANCE, records)
    exact_labels = next(o for o in exact_only.outputs if o.method == "predict")
    assert exact_labels.mismatches == labels.tied_mismatches, "without near ties, the same rows are label mismatches"
    assert labels.tied_mismatches > 0, "half precision does flip labels on rows this close to the boundary"


def test_a_model_without_float32_weights_has_nothing_to_halve(store, tmp_path):
    resolved = resolve(parse_source("models:/fraud@champion"), tmp_path, store.uri, None)
    model = read_model(resolved)
    converted = LocalConverter().convert(model, model.input_example, ConversionOptions(trusted_types=()))
    with pytest.raises(MpackError, match="nothing to halve"):
        halve_precision(optimize_graph(converted.onnx_bytes))


def _mlp_file(path, scale: float) -> None:
    rng = np.random.default_rng(0)
    first, second = (rng.normal(size=(16, 64)) * scale).astype(np.float32), (rng.normal(size=(64, 4)) * scale).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        [numpy_helper.from_array(first, "w1"), numpy_helper.from_array(second, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_a_graph_that_leaves_float16s_range_is_refused_before_anything_is_installed(tmp_path):
    """Weights of 100s: activations pass 65,504 (float16's largest). This machine's CPU onnxruntime
    computes those nodes in float32 and answers finite numbers (the parity figures alone would pass);
    on a GPU they would be inf. The probe names the tensors, before any wheel is installed."""
    model = tmp_path / "wide.onnx"
    _mlp_file(model, scale=300.0)
    result = mpack("build", "--model", str(model), "--target", "gpu", "--precision", "fp16", "--env-manager", "local")
    assert_clean_error(result, "leave float16's range (65,504)", "would be inf on a GPU", "'y", "drop --precision fp16")
    assert "halved to float16" in result.stderr and "installing" not in result.stderr


def test_precision_is_refused_where_it_does_not_apply(store, tmp_path):
    model = tmp_path / "small.onnx"
    _mlp_file(model, scale=0.1)
    assert_clean_error(mpack("build", "--model", str(model), "--target", "container", "--precision", "fp16"), "--precision fp16 only applies to --target gpu")
    assert_clean_error(mpack("build", "--model", str(model), "--target", "gpu", "--precision", "fp8"), "--precision fp8 is not a precision", "fp32, fp16")
    result = mpack("build", "--model", "models:/fraud@champion", "--target", "gpu", "--precision", "fp16", "--env-manager", "local", store=store)
    assert_clean_error(result, "nothing to halve")
