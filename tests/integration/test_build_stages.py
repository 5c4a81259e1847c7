"""Each build stage through its seam (DESIGN.md §13): ``pipeline.staged(options, through=stage)`` yields
the real ``BuildState`` after the stages up to that one, on a small real model — the test store's
scikit-learn model ``fraud@champion`` (a scaler and boosted trees) or a bare .onnx file — and the test
reads what that stage wrote and what it left for the next. Then the packaging's promise: a Lambda
zip ships exactly the handler modules its entry point imports, and answers every event source."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile

import numpy as np
import onnx
import pytest
from mpack.handlers.manifest import Manifest
from mpack.infra.errors import MpackError
from mpack.infra.local.events import wrap_event
from mpack.packager.pipeline import BuildOptions, staged
from mpack.packager.runtimes import runtime_of
from onnx import TensorProto, helper, numpy_helper

from tests.helpers.bundle_runner import run_events, unzip

MODEL = "models:/fraud@champion"
NOT_ON_LAMBDA = {"azure_function", "gpu_session", "batching", "container_app", "open_inference", "native_model"}


def _options(store, runtime_cache, model: str = MODEL, **given) -> BuildOptions:
    """As conftest's ``built`` builds (the store's pickles trusted), loaded in this interpreter."""
    return BuildOptions(model=model, tracking_uri=store.uri, cache_dir=runtime_cache, env_manager="local", allow_pickle=True, **given)


def _state(options: BuildOptions, through: str):
    with staged(options, through=through) as state:
        yield state


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """A bare .onnx file (no MLflow model, no model environment): y = relu(x @ w1) @ w2."""
    rng = np.random.default_rng(0)
    first, second = (rng.normal(size=(6, 8)) * 0.3).astype(np.float32), (rng.normal(size=(8, 2)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(first, "w1"), numpy_helper.from_array(second, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def resolved(store, runtime_cache):
    yield from _state(_options(store, runtime_cache), "resolve")


@pytest.fixture(scope="module")
def converted(store, runtime_cache):
    yield from _state(_options(store, runtime_cache), "convert")


@pytest.fixture(scope="module")
def prepared(store, runtime_cache):
    """--target lambda --runtime auto: every runtime that can serve the model prepares its candidates."""
    yield from _state(_options(store, runtime_cache), "prepare")


@pytest.fixture(scope="module")
def checked(store, runtime_cache):
    yield from _state(_options(store, runtime_cache), "parity")


@pytest.fixture(scope="module", params=["onnx", "micro"])
def chosen(request, store, runtime_cache):
    yield from _state(_options(store, runtime_cache, runtime=request.param), "runtime")


@pytest.fixture(scope="module", params=["onnx", "micro"])
def manifested(request, store, runtime_cache):
    yield from _state(_options(store, runtime_cache, runtime=request.param), "manifest")


def test_resolve_finds_the_model_and_converts_nothing(store, resolved):
    unit = resolved.unit
    assert (unit.resolved.name, str(unit.resolved.version)) == ("fraud", "1")  # champion is version 1
    assert unit.model.flavor("sklearn") and [c.name for c in unit.model.columns] == list(store.frames["fraud"].columns)
    assert (unit.converted, unit.checks, unit.candidates, unit.artifact) == (None, None, [], None)
    assert list(resolved.timings) == ["resolve"] and resolved.files == [] and resolved.manifest is None


def test_resolve_takes_a_bare_onnx_file_without_an_mlflow_model(store, runtime_cache, onnx_file):
    with staged(_options(store, runtime_cache, str(onnx_file)), through="resolve") as state:
        unit = state.unit
        assert unit.model is None and unit.resolved.path.read_bytes() == onnx_file.read_bytes()
        assert unit.converted is None


def test_convert_writes_the_onnx_graph_and_the_rows_the_gate_runs_on(store, converted):
    unit = converted.unit
    assert unit.converted.flavor == "sklearn" and unit.converted.signature["layout"] == "matrix"  # numeric columns: one float tensor, in order
    assert [c["name"] for c in unit.converted.signature["columns"]] == list(store.frames["fraud"].columns)
    onnx.checker.check_model(onnx.load_from_string(unit.converted.onnx_bytes))
    assert unit.converted.converter["env_manager"] == "local"
    assert len(unit.checks.records) >= 2000 and "at decision thresholds" in unit.checks.source
    assert list(unit.checks.example["dataframe_split"]["columns"]) == list(store.frames["fraud"].columns)
    assert unit.candidates == [] and unit.artifact is None
    assert list(converted.timings) == ["resolve", "convert"]


def test_convert_takes_a_bare_onnx_file_as_it_is(store, runtime_cache, onnx_file):
    with staged(_options(store, runtime_cache, str(onnx_file)), through="convert") as state:
        unit = state.unit
        assert unit.converted.flavor == "onnx" and unit.converted.signature["layout"] == "tensors"
        assert unit.checks.records is None and list(unit.checks.request["inputs"]) == ["x"]


def test_prepare_on_lambda_weighs_onnx_and_micro(prepared):
    unit = prepared.unit
    assert [(a.runtime, a.precision) for a in unit.candidates] == [("onnx", "fp32"), ("micro", "")]
    onnx_candidate, micro_candidate = unit.candidates
    assert onnx_candidate.file == "model.onnx" and onnx_candidate.required is True
    assert micro_candidate.file == "model_micro.py" and micro_candidate.program is not None and micro_candidate.required is False  # auto: weighed, not required
    assert micro_candidate.data.decode().count("\n") > 10 and "micro" in micro_candidate.contract
    assert all(a.parity is None for a in unit.candidates), "checked by the next stage"
    assert unit.not_weighed == {"native": "the model converts to ONNX"}


def test_prepare_on_a_container_does_not_weigh_micro_and_says_why(store, runtime_cache):
    with staged(_options(store, runtime_cache, target="container"), through="prepare") as state:
        unit = state.unit
        assert [a.runtime for a in unit.candidates] == ["onnx"]
        assert unit.not_weighed["micro"] == "--runtime micro builds Lambda zips (--target lambda), not --target container"


def test_prepare_refuses_micro_on_azure_with_the_reason(store, runtime_cache):
    with (
        pytest.raises(MpackError, match=r"--runtime micro builds Lambda zips \(--target lambda\), not --target azure"),
        staged(_options(store, runtime_cache, target="azure", runtime="micro"), through="prepare"),
    ):
        pass


def test_parity_checks_every_candidate(checked):
    unit = checked.unit
    assert {a.runtime for a in unit.candidates} == {"onnx", "micro"} and unit.dropped == []
    for artifact in unit.candidates:
        report = artifact.parity
        assert report.passed and report.rows == len(unit.checks.records), (artifact.label, report.to_dict())
        labels = next(o for o in report.outputs if o.method == "predict")
        assert labels.mismatches == 0
        probabilities = next(o for o in report.outputs if o.method == "predict_proba")
        assert probabilities.max_scaled_diff <= 1e-5
    assert checked.unit.artifact is None and checked.installed is None


def test_runtime_chooses_one_artifact_and_the_plan_follows_it(chosen):
    unit, runtime = chosen.unit, chosen.options.runtime
    assert unit.artifact.runtime == runtime and unit.candidates == [unit.artifact]
    assert unit.choice["runtime"] == runtime and unit.choice["reason"] == f"--runtime {runtime}"
    assert chosen.plan.kind == runtime
    site = sorted(p.name for p in chosen.installed.site.iterdir())
    if runtime_of(unit.artifact).standard_library:
        assert site == [] and chosen.plan.onnxruntime == "" and chosen.plan.handler_packages == ()
    else:
        assert "onnxruntime" in site and "numpy" in site and chosen.plan.onnxruntime
    assert chosen.files == [] and chosen.manifest is None


def test_manifest_lists_exactly_the_model_file_and_mpack_json(manifested):
    artifact = manifested.unit.artifact
    assert [f.name for f in manifested.files] == [artifact.file, "mpack.json"]
    assert manifested.files[0].data == artifact.data
    document = json.loads(manifested.files[1].data)
    assert document["schema"] == 2 and len(document["models"]) == 1
    entry = document["models"][0]
    assert entry["file"] == artifact.file and entry["sha256"] == hashlib.sha256(artifact.data).hexdigest()
    assert entry["name"] == "fraud" and document["runtime"] == manifested.plan.describe()
    if manifested.options.runtime == "micro":
        assert document["runtime"] == {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "arch": manifested.plan.arch, "kind": "micro"} and "micro" in entry
    else:
        assert "kind" not in document["runtime"] and document["runtime"]["onnxruntime"] and "micro" not in entry
    manifest = Manifest.from_bytes(manifested.files[1].data)
    assert manifest.models[0].file == artifact.file and manifested.manifest["model"]["sha256"] == entry["sha256"]
    assert manifested.packaged is None


@pytest.fixture(scope="module", params=["onnx", "micro"])
def lambda_zip(request, built, tmp_path_factory):
    """The full build (the same builds the other Lambda tests share)."""
    report = built(MODEL, runtime=request.param)
    return request.param, report.artifact, unzip(report.artifact, tmp_path_factory.mktemp(f"zip-{request.param}"))


def _shipped_handlers(zip_path) -> set[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return {name.rsplit("/", 1)[1][:-3] for name in archive.namelist() if name.startswith("mpack/handlers/") and name.endswith(".py") and name.count("/") == 2}


def test_a_lambda_zip_ships_only_the_handler_modules_its_entry_point_imports(store, lambda_zip):
    runtime, zip_path, folder = lambda_zip
    shipped = _shipped_handlers(zip_path)
    assert not shipped & NOT_ON_LAMBDA, shipped & NOT_ON_LAMBDA
    entry = {"micro": {"micro_lambda", "micro_runtime", "micro_kernels"}, "onnx": {"lambda_function", "lambda_sqs", "loader", "protocol"}}[runtime]
    assert entry <= shipped
    if runtime == "micro":
        assert "lambda_function" not in shipped and "tensor_feeds" not in shipped

    frame = store.frames["fraud"].iloc[:4]
    request = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
    expected = store.estimators["fraud"].predict(frame).tolist()
    events = [wrap_event("apigw-rest", request), wrap_event("apigw-http", request), wrap_event("function-url", request, base64_body=True), wrap_event("sqs", [request, request]), request]
    (rest, http, url, sqs, direct), modules, _ = run_events(folder, events)
    for answer in (rest, http, url):
        assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"predictions": expected}
    assert sqs == {"batchItemFailures": []}
    assert direct == {"predictions": expected}
    imported = {m.split(".")[2] for m in modules if m.startswith("mpack.handlers.")}
    assert imported <= shipped and not imported & NOT_ON_LAMBDA
    never_imported = shipped - imported - {"__init__"}
    assert never_imported == set(), never_imported  # nothing shipped goes unimported
    assert not shipped & {"lambda_asgi", "asgi_app"}  # --lambda-http direct: Mangum's branch stays out
