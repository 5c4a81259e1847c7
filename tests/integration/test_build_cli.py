"""`mpack build` through its real command line: sources, errors users can cause (one line of
`error:` and `hint:`, exit 1, no traceback), usage errors (exit 2), --json, size limits."""

from __future__ import annotations

import json
import os
import zipfile

import pytest
from mpack.infra.errors import MpackError
from mpack.packager.bundle.dependencies import install_runtime
from mpack.packager.bundle.runtime_plan import plan_runtime
from mpack.packager.source.resolve import parse_source, resolve

from tests.helpers.cli import assert_clean_error, mpack

# -- sources ---------------------------------------------------------------------------------------


def test_registry_references_resolve_to_the_right_version(store, tmp_path):
    by_alias = resolve(parse_source("models:/fraud@challenger"), tmp_path / "a", store.uri)
    by_version = resolve(parse_source("models:/fraud/2"), tmp_path / "b", store.uri)
    by_stage = resolve(parse_source("models:/fraud/production"), tmp_path / "c", store.uri)
    by_run = resolve(parse_source(f"runs:/{store.fraud_run_id}/model"), tmp_path / "d", store.uri)
    champion = resolve(parse_source("models:/fraud@champion"), tmp_path / "e", store.uri)
    assert by_alias.version == by_version.version == by_stage.version == "2"
    model_file = lambda resolved: (resolved.path / "model.skops").read_bytes()  # noqa: E731
    assert model_file(by_alias) == model_file(by_stage)
    assert model_file(by_run) == model_file(champion) != model_file(by_alias)
    assert by_run.version == store.fraud_run_id[:8] and by_run.name == "model"


def test_parse_source_rejects_malformed_uris():
    for uri, needle in [("models:/", "cannot read model URI"), ("models:/a/b/c", "cannot read model URI"), ("runs:/abc", "cannot read run URI"), ("s3://bucket/model", "unsupported model source")]:
        with pytest.raises(MpackError, match=needle):
            parse_source(uri)


def test_build_from_run_uri_and_local_folder_and_onnx_file_with_json_report(store, tmp_path, runtime_cache):
    for source, name in [(f"runs:/{store.fraud_run_id}/model", "run"), (str(store.local_dir), "local"), (str(store.onnx_file), "file")]:
        output = tmp_path / f"{name}.zip"
        result = mpack("build", "--model", source, "--output", str(output), "--cache-dir", str(runtime_cache), "--json", store=store)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] and report["artifact"]["path"] == str(output) and output.is_file()
        assert report["verification"]["ran"] and report["parity"]["passed"]
        assert report["handler"] == "mpack_handler.handler"
        assert set(report["timings_s"]) >= {"resolve", "convert", "parity", "dependencies", "zip", "verify"}  # and "runtime" where micro was weighed
        assert "✓ Writing bundle" in result.stderr  # progress goes to stderr, JSON alone on stdout


def test_default_output_path_is_dist_model_version_lambda_zip(store, tmp_path, runtime_cache):
    result = mpack("build", "--model", "models:/fraud/2", "--cache-dir", str(runtime_cache), store=store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dist" / "fraud-2-lambda.zip").is_file()
    assert not [p for p in (tmp_path / "dist").iterdir() if p.name.startswith(".")]


# -- errors users can cause ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "needles"),
    [
        ("models:/nope@champion", ["registered model 'nope' not found", "fraud"]),
        ("models:/fraud@gold", ["has no alias 'gold'", "challenger, champion"]),
        ("models:/fraud/9", ["has no version 9", "versions of 'fraud': 1, 2 (Production)"]),
        ("models:/fraud/Staging", ["no version in stage Staging"]),
        ("runs:/0123456789abcdef0123456789abcdef/model", ["run '0123456789abcdef0123456789abcdef' not found"]),
        ("models:/custom/1", ["custom pyfunc model runs its author's code", "--allow-pickle"]),
    ],
)
def test_registry_and_flavor_errors(store, tmp_path, model, needles):
    assert_clean_error(mpack("build", "--model", model, "--output", str(tmp_path / "x.zip"), store=store), *needles)
    assert not (tmp_path / "x.zip").exists()


def test_local_source_errors(store, tmp_path):
    assert_clean_error(mpack("build", "--model", str(store.empty_dir)), "has no MLmodel file")
    assert_clean_error(mpack("build", "--model", str(store.corrupt_dir)), "cannot read model file model.skops", "corrupt")
    assert_clean_error(mpack("build", "--model", str(tmp_path / "missing")), "does not exist")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not really onnx")
    assert_clean_error(mpack("build", "--model", str(garbage)), "not a valid ONNX model")


def test_unreachable_stores(tmp_path):
    missing = mpack("build", "--model", "models:/fraud/1", "--tracking-uri", f"sqlite:///{tmp_path}/none.db")
    assert_clean_error(missing, "does not exist")
    closed = mpack("build", "--model", "models:/fraud/1", "--tracking-uri", "http://127.0.0.1:9")
    assert_clean_error(closed, "cannot reach the MLflow store http://127.0.0.1:9")


def test_untrusted_skops_types_are_refused_unless_named(store, tmp_path, runtime_cache):
    import mlflow

    folder = tmp_path / "untrusted"
    mlflow.sklearn.save_model(store.estimators["fraud"], str(folder), skops_trusted_types=["sklearn.tree._tree.Tree"])
    import yaml

    mlmodel = folder / "MLmodel"
    document = yaml.safe_load(mlmodel.read_text())
    document["flavors"]["sklearn"]["skops_trusted_types"] = []  # as if the author had declared nothing
    mlmodel.write_text(yaml.safe_dump(document))
    assert_clean_error(mpack("build", "--model", str(folder)), "sklearn.tree._tree.Tree", "--trust-type")
    ok = mpack("build", "--model", str(folder), "--trust-type", "sklearn.tree._tree.Tree", "--no-verify", "--output", str(tmp_path / "t.zip"), "--cache-dir", str(runtime_cache))
    assert ok.returncode == 0, ok.stderr


def test_parity_failure_names_the_output_and_the_figure(store, tmp_path):
    result = mpack("build", "--model", "models:/house/1", "--allow-pickle", "--tolerance", "0", "--output", str(tmp_path / "h.zip"), store=store)
    assert_clean_error(result, "parity check failed", "predict output 'variable'", "tolerance 0")
    assert not (tmp_path / "h.zip").exists()


def test_pickle_models_need_consent_given_by_flag_or_project_setting(store, tmp_path, runtime_cache):
    assert_clean_error(mpack("build", "--model", "models:/house/1", store=store, cwd=tmp_path), "model.pkl is a pickle", "runs any code", "--allow-pickle")
    (tmp_path / "pyproject.toml").write_text("[tool.mpack]\nallow_pickle = true\n")
    allowed = mpack("build", "--model", "models:/house/1", "--no-verify", "--json", "--output", str(tmp_path / "h.zip"), "--cache-dir", str(runtime_cache), store=store, cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert any("--allow-pickle" in w and "runs any code" in w for w in json.loads(allowed.stdout)["warnings"])
    (tmp_path / "pyproject.toml").write_text('[tool.mpack]\nallow_pickle = "yes"\n')
    assert_clean_error(mpack("build", "--model", "models:/house/1", store=store, cwd=tmp_path), "allow_pickle must be true or false")


def test_rebuilds_are_byte_identical_across_processes_and_hash_seeds(store, tmp_path, runtime_cache):
    hashes = set()
    for seed in ("1", "2", "3"):
        result = mpack(
            "build", "--model", "models:/realistic/1", "--no-verify", "--json", "--output", str(tmp_path / f"r{seed}.zip"), "--cache-dir", str(runtime_cache), store=store, env={"PYTHONHASHSEED": seed}
        )
        assert result.returncode == 0, result.stderr
        hashes.add(json.loads(result.stdout)["artifact"]["sha256"])
    assert len(hashes) == 1


def test_parity_can_use_sample_data_files(store, tmp_path, runtime_cache):
    sample = tmp_path / "sample.csv"
    store.frames["fraud"].iloc[100:160].to_csv(sample, index=False)
    result = mpack("build", "--model", "models:/fraud/1", "--sample-data", str(sample), "--no-verify", "--json", "--output", str(tmp_path / "s.zip"), "--cache-dir", str(runtime_cache), store=store)
    assert result.returncode == 0, result.stderr
    parity = json.loads(result.stdout)["parity"]
    assert parity["rows"] >= 2000 and parity["source"].startswith("60 sample-data + ")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"a": 1}]))
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--sample-data", str(wrong), store=store), "lacks column(s) f0")


def _model_folder_with(tmp_path, store, mlmodel_text: str):
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(store.local_dir, folder)
    (folder / "MLmodel").write_text(mlmodel_text)
    return folder


def test_bad_inputs_get_error_and_hint_never_a_traceback(store, tmp_path):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("these are my notes, not a database")
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--tracking-uri", f"sqlite:///{not_a_db}"), "is not an SQLite database")
    assert_clean_error(mpack("build", "--model", str(_model_folder_with(tmp_path / "a", store, "- just\n- a list\n"))), "is not an MLmodel document")
    signature = "flavors: {sklearn: {pickled_model: model.skops}}\nsignature:\n  inputs: '[{\"name\": broken'\n"
    assert_clean_error(mpack("build", "--model", str(_model_folder_with(tmp_path / "b", store, signature))), "signature's inputs are not valid JSON")
    assert_clean_error(mpack("build", "--model", "", store=store), "--model is empty")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--output", str(a_file / "m.zip"), store=store), "is a file, not a folder")
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--output", str(tmp_path), store=store), "is a folder")


def test_usage_errors_exit_2_and_bad_options_exit_1(store):
    assert mpack("build").returncode == 2
    assert mpack("build", "--model", "x", "--tolerance", "abc").returncode == 2
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--target", "gcp", store=store), "unknown target 'gcp'", "lambda")
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--python", "3.9", store=store), "--python 3.9")


@pytest.mark.parametrize("mode", ["gpu", "container", "azure", "bogus", "native"])
def test_lambda_http_takes_only_its_two_modes_and_refuses_others_before_any_work(tmp_path, mode):
    """Internal package-set names (gpu, container, azure) are no modes: a usage error at once, naming
    the two, with no model looked up (the tracking store does not exist) and nothing written."""
    import time

    output = tmp_path / "out" / "bundle.zip"
    started = time.monotonic()
    result = mpack("build", "--model", "models:/fraud/1", "--output", str(output), "--lambda-http", mode, cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}"})
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for '--lambda-http'" in message and f"'{mode}'" in message and "'direct', 'asgi'" in message
    assert "Traceback" not in result.stderr and "container, azure" not in message
    assert elapsed < 5  # refused while parsing: no resolution, conversion or verification ran
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output folder, no store, no dist/


def test_lambda_http_on_azure_is_still_refused(store):
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--target", "azure", "--lambda-http", "asgi", store=store), "--lambda-http applies to Lambda targets")


def test_json_errors_are_machine_readable(store):
    result = mpack("build", "--model", "models:/nope/1", "--json", store=store)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"ok": False, "error": json.loads(result.stdout)["error"], "hint": json.loads(result.stdout)["hint"]}
    assert "not found" in json.loads(result.stdout)["error"]


def test_debug_shows_the_traceback(store):
    result = mpack("build", "--model", "models:/nope/1", "--debug", store=store)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_over_250_mb_unzipped_is_refused_with_the_image_hint_and_leaves_nothing(store, tmp_path, runtime_cache):
    """A runtime with a synthetic 260 MB library (a sparse file in a cache entry for this plan)."""
    import shutil

    plan = plan_runtime(None, None, "direct")
    real = install_runtime(plan, runtime_cache).site.parent  # a cache hit after any earlier build
    cache = tmp_path / "cache"
    shutil.copytree(real, cache / "runtime" / real.name)
    with open(cache / "runtime" / real.name / "site" / "huge_native_lib.so", "wb") as handle:
        handle.truncate(260 * 2**20)
    output = tmp_path / "big.zip"
    result = mpack("build", "--model", "models:/fraud/1", "--cache-dir", str(cache), "--output", str(output), "--runtime", "onnx", store=store)
    assert_clean_error(result, "over Lambda's 250 MB limit", "huge_native_lib.so", "--target lambda-image")
    assert list(tmp_path.glob("*.zip")) == [] and not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_failed_build_keeps_the_previous_artifact(store, tmp_path):
    output = tmp_path / "keep.zip"
    output.write_bytes(b"previous bundle")
    result = mpack("build", "--model", "models:/house/1", "--allow-pickle", "--tolerance", "0", "--output", str(output), store=store)
    assert result.returncode == 1
    assert output.read_bytes() == b"previous bundle"


def test_an_estimator_skl2onnx_cannot_convert_is_named_with_what_is_supported(store, tmp_path):
    import mlflow
    from sklearn.neighbors import NearestCentroid

    frame = store.frames["fraud"]
    folder = tmp_path / "centroid"
    mlflow.sklearn.save_model(NearestCentroid().fit(frame, store.estimators["fraud"].predict(frame)), str(folder), input_example=frame.head(2))
    assert_clean_error(mpack("build", "--model", str(folder)), "cannot convert NearestCentroid", "skl2onnx 1.", "--runtime native", "mlflow.onnx", "GradientBoosting")


def test_cross_architecture_build_needs_qemu_or_ships_arm64_wheels_unverified_with_no_verify(store, tmp_path, runtime_cache):
    output = tmp_path / "arm.zip"
    command = ("build", "--model", "models:/fraud/1", "--arch", "arm64", "--runtime", "onnx", "--json", "--output", str(output), "--cache-dir", str(runtime_cache))
    if not os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"):  # this machine: no QEMU user emulation
        assert_clean_error(mpack(*command, store=store), "arm64 bundle cannot run on this x86_64 machine", "qemu-user-static", "--arch x86_64", "--no-verify")
        assert not output.exists()
    result = mpack(*command, "--no-verify", store=store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runtime"]["arch"] == "arm64" and report["verification"]["ran"] is False
    assert "uncompiled" in result.stderr and any("uncompiled" in warning for warning in report["warnings"])
    with zipfile.ZipFile(output) as archive:
        native = [n for n in archive.namelist() if n.endswith(".so") and "_pybind11_state" in n]
        assert native and all("aarch64" in n for n in native)
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]  # no arm64 interpreter compiled them


def test_an_onnx_file_newer_than_the_target_runtime_is_refused_before_bundling(store, tmp_path):
    import onnx

    model = onnx.load(str(store.onnx_file))
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 21
    newer = tmp_path / "newer.onnx"
    onnx.save(model, str(newer))
    assert_clean_error(mpack("build", "--model", str(newer), "--python", "3.11"), "opset 21 of ai.onnx", "--python 3.12")


def test_without_an_input_example_parity_runs_on_rows_synthesized_from_the_signature(store, tmp_path, runtime_cache):
    import mlflow
    from mlflow.models import infer_signature

    frame = store.frames["fraud"]
    folder = tmp_path / "no-example"
    estimator = store.estimators["fraud"]
    mlflow.sklearn.save_model(estimator, str(folder), signature=infer_signature(frame, estimator.predict(frame)), skops_trusted_types=["sklearn.tree._tree.Tree"])
    result = mpack("build", "--model", str(folder), "--json", "--output", str(tmp_path / "n.zip"), "--cache-dir", str(runtime_cache))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    source = report["parity"]["source"]
    assert "synthesized from the signature" in source and "at decision thresholds" in source and report["parity"]["rows"] >= 2000
    assert report["verification"]["ran"] is True


def test_batching_options_belong_to_the_container_target_and_are_range_checked(store, tmp_path):
    assert_clean_error(
        mpack("build", "--model", "models:/fraud/1", "--target", "lambda", "--max-batch-size", "32", store=store), "--max-batch-size only applies to --target container", "drop --max-batch-size"
    )
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--target", "container", "--max-batch-size", "-1", store=store), "--max-batch-size -1 is out of range", "0 to 65536")
    assert_clean_error(mpack("build", "--model", "models:/fraud/1", "--target", "container", "--max-batch-wait-ms", "5000", store=store), "--max-batch-wait-ms 5000 is out of range", "0 to 1000 ms")
