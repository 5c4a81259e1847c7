"""``--precision fp16`` (gpu target) on a machine without a GPU. The halved graph is made and checked
by the build's own stages (``pipeline.staged``: resolve, convert, prepare, parity, runtime, manifest)
on a real MLflow model — scored by this machine's CPU onnxruntime, which runs float16 nodes
(converting where it has no half-precision kernel); a GPU computes them natively, and the figures
from one belong in bench/ when one is lent. A whole `--target gpu` build downloads onnxruntime-gpu
and its CUDA wheels (gigabytes): the stages run up to the manifest with that download stood in for
(tests/helpers/staged_bundles.py), and through the CLI only the paths that end before it are run:
the refusals and the parity gate stopping a model that leaves float16's range."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from mpack.handlers.manifest import Manifest
from mpack.infra.errors import MpackError
from mpack.packager.check.parity import check_parity, parity_requests
from mpack.packager.convert.precision import FP16_TOLERANCE
from mpack.packager.pipeline import BuildOptions, staged
from onnx import TensorProto, helper, numpy_helper

from tests.helpers.asgi import asgi_request, bundle_app
from tests.helpers.cli import assert_clean_error, mpack
from tests.helpers.models import fraud_frame
from tests.helpers.staged_bundles import gpu_state, lay_out

MLP = "models:/mlp-fp16/1"


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


def _options(store, runtime_cache, model: str, **given) -> BuildOptions:
    return BuildOptions(model=model, target="gpu", tracking_uri=store.uri, cache_dir=runtime_cache, env_manager="local", allow_pickle=True, runtime="onnx", **given)


@pytest.fixture(scope="module")
def fp16(store, mlp, runtime_cache):
    """The `--target gpu --precision fp16` build's state after its manifest stage."""
    with gpu_state(_options(store, runtime_cache, MLP, precision="fp16")) as (state, asked):
        assert [(plan.kind, bool(plan.cuda)) for plan in asked] == [("gpu", True)], "the dependencies stage asked for onnxruntime-gpu and its CUDA wheels"
        yield state


@pytest.fixture(scope="module")
def fp32_graph(store, mlp):
    """The float32 graph the same build halves: `--precision fp32`'s one candidate, optimized for a GPU."""
    with staged(_options(store, None, MLP, precision="fp32"), through="prepare") as state:
        (candidate,) = state.unit.candidates
        assert candidate.precision == "fp32"
        return candidate.data


def _weight_bytes(data: bytes) -> int:
    return sum(len(t.raw_data) for t in onnx.load_from_string(data).graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16))


def test_the_halved_graph_keeps_float32_inputs_and_outputs_and_answers_within_its_tolerance(mlp, fp16, fp32_graph):
    estimator, _ = mlp
    unit = fp16.unit
    half = unit.artifact
    assert (half.runtime, half.precision, half.file) == ("onnx", "fp16", "model.onnx")
    graph = onnx.load_from_string(half.data).graph
    weights = {t.name: t.data_type for t in graph.initializer}
    assert TensorProto.FLOAT16 in weights.values() and TensorProto.FLOAT not in weights.values()
    assert [i.type.tensor_type.elem_type for i in graph.input] == [TensorProto.FLOAT] * len(graph.input)
    assert {o.type.tensor_type.elem_type for o in graph.output} <= {TensorProto.FLOAT, TensorProto.INT64}
    assert _weight_bytes(half.data) * 2 == _weight_bytes(fp32_graph)

    probe = half.probe  # the parity stage scored the halved graph with every float16 intermediate watched
    assert probe.names, "the probe watches the halved graph's float16 intermediates"
    assert probe.overflows == {}
    report = half.parity
    assert report.passed and report.rows == len(unit.checks.records), report.to_dict()
    probabilities = next(o for o in report.outputs if o.method == "predict_proba")
    assert 1e-5 < probabilities.max_scaled_diff <= FP16_TOLERANCE, "half precision moves probabilities, within its own tolerance"
    checks = unit.checks
    strict = check_parity(unit.converted, half.data, parity_requests(unit.converted, checks.records, checks.request), checks.source, 1e-5, checks.records)
    assert not strict.passed, "at float32's tolerance the halved graph is refused: the tolerance is what lets it through"

    rows, _ = fraud_frame(rows=2400, seed=12)
    rows = rows.astype(np.float32)
    answer = half.service.score_document({"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}, "params": {"predict_method": "predict_proba"}})
    assert answer.ok and np.abs(np.asarray(answer.body["predictions"]) - estimator.predict_proba(rows)).max() <= FP16_TOLERANCE


def test_the_manifest_says_what_the_fp16_gpu_build_made(fp16):
    manifest = Manifest.from_bytes({f.name: f.data for f in fp16.files}["mpack.json"])
    assert [f.name for f in fp16.files] == ["model.onnx", "mpack.json"]
    assert manifest.target == "gpu" and manifest.runtime["kind"] == "gpu" and manifest.runtime["cuda"] in ("12", "13")
    assert manifest.build["precision"] == "fp16" and manifest.build["require_gpu"] is True
    assert manifest.models[0].sha256 == hashlib.sha256(fp16.unit.artifact.data).hexdigest()


def test_the_gpu_server_answers_from_the_halved_graph(mlp, fp16, tmp_path, capfd):
    """The gpu image's own app in process (as in test_gpu_target.py) on the model folder the
    `--target gpu --precision fp16` build puts in its image; with MPACK_REQUIRE_GPU=0 it serves from
    this machine's CPU, its session fused at load."""
    estimator, _ = mlp
    app = bundle_app(lay_out(fp16, tmp_path / "model"), MPACK_REQUIRE_GPU="0")
    assert "serving from CPUExecutionProvider" in capfd.readouterr().err
    rows = fraud_frame(rows=300, seed=13)[0].astype(np.float32)
    request = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}, "params": {"predict_method": "predict_proba"}}
    status, _, body = asgi_request(app, "POST", "/invocations", {"content-type": "application/json"}, json.dumps(request).encode())
    assert status == 200, body
    answered = np.asarray(json.loads(body)["predictions"])
    assert np.abs(answered - estimator.predict_proba(rows)).max() <= FP16_TOLERANCE


def test_a_label_may_differ_only_where_the_original_cannot_tell_two_classes_apart_in_half_precision(mlp, fp16):
    """Rows built to sit on the MLP's decision boundary: changed labels are counted as near ties, and
    only rows whose original top two probabilities are within the tolerance qualify (the parity
    gate's own rule, on the graph the stages halved)."""
    estimator, frame = mlp
    converted, half = fp16.unit.converted, fp16.unit.artifact.data
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


def test_a_model_without_float32_weights_has_nothing_to_halve(store):
    """Boosted trees keep their thresholds in node attributes, not float32 weights: the prepare stage
    refuses before any library is installed."""
    with pytest.raises(MpackError, match="nothing to halve"), staged(_options(store, None, "models:/house/1", precision="fp16"), through="prepare"):
        pass


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
    result = mpack("build", "--model", "models:/house/1", "--allow-pickle", "--target", "gpu", "--precision", "fp16", "--env-manager", "local", store=store)
    assert_clean_error(result, "nothing to halve")
