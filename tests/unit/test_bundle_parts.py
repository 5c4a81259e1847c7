"""Pure pieces of the build: the zip writer, strip rules, runtime plan, event inference, and the
rule that bundle code imports nothing from the build or platform side."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest
from mpack.handlers.lambda_sources import event_kind
from mpack.infra.errors import MpackError
from mpack.infra.local.events import EVENT_KINDS, wrap_event
from mpack.packager.bundle.runtime_plan import check_lambda_http, plan_runtime
from mpack.packager.bundle.strip import strip_site
from mpack.packager.bundle.zip_writer import BundleEntry, contributor, write_zip

ROOT = Path(__file__).resolve().parents[2]


def test_handlers_import_only_runtime_libraries():
    allowed_roots = {
        "aws_lambda_powertools",
        "mangum",
        "starlette",
        "uvicorn",
        "azure",
        "numpy",
        "onnxruntime",
        "pandas",
        "skops",
        "cloudpickle",
        "mlflow",
    }  # the last four: native runtime only (mlflow: custom pyfunc models)
    allowed_roots.add("_sha2")  # Python 3.12+ built-in SHA-2
    allowed_roots.add("snapshot_restore_py")  # provided by Lambda's runtime, imported only under SnapStart
    for path in (ROOT / "handlers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root != "mpack", f"{path.name} imports {name}: handlers must stay self-contained"
                import sys

                assert root in sys.stdlib_module_names or root in allowed_roots, f"{path.name} imports {name}"


def test_zip_is_deterministic_sorted_and_fixed_mode(tmp_path):
    (tmp_path / "b.txt").write_text("bee")
    entries = [BundleEntry("z/last.py", data=b"z = 1\n"), BundleEntry("a/first.py", path=tmp_path / "b.txt")]
    one = write_zip(entries, tmp_path / "one.zip")
    (tmp_path / "b.txt").touch()  # a newer mtime changes nothing
    two = write_zip(list(reversed(entries)), tmp_path / "two.zip")
    assert one.sha256 == two.sha256
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["a/first.py", "z/last.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_zip_refuses_colliding_entries(tmp_path):
    with pytest.raises(ValueError, match="collide"):
        write_zip([BundleEntry("x", data=b"1"), BundleEntry("x", data=b"2")], tmp_path / "x.zip")


def test_size_report_groups_files_by_package():
    assert contributor("numpy/core/x.so") == "numpy"
    assert contributor("numpy.libs/libopenblas.so") == "numpy"
    assert contributor("numpy-1.26.4.dist-info/RECORD") == "numpy"
    assert contributor("__pycache__/typing_extensions.cpython-311.pyc") == "typing_extensions"
    assert contributor("typing_extensions.py") == "typing_extensions"


def test_strip_removes_tests_headers_stubs_tools_and_boto(tmp_path):
    keep = ["numpy/__init__.py", "numpy.libs/libopenblas.so", "onnxruntime/capi/onnxruntime_pybind11_state.so", "onnxruntime/capi/libonnxruntime_providers_shared.so"]
    drop = [
        "numpy/core/tests/test_x.py",
        "numpy/_core/include/numpy/arrayobject.h",
        "numpy/__init__.pyi",
        "numpy/f2py/__init__.py",
        "onnxruntime/capi/libonnxruntime.so.1.16.3",
        "onnxruntime/transformers/x.py",
        "onnxruntime/quantization/q.py",
        "onnxruntime/tools/t.py",
        "boto3/__init__.py",
        "botocore-1.0.dist-info/METADATA",
        "bin/f2py",
    ]
    for name in keep + drop:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * 10)
    assert strip_site(tmp_path) == 10 * len(drop)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)


def test_runtime_plan_follows_the_target_glibc():
    legacy = plan_runtime("3.11", "arm64", "direct")
    assert (legacy.onnxruntime, legacy.numpy, legacy.glibc) == ("1.16.3", "1.26.4", "2.26")
    assert legacy.platforms[0] == "manylinux_2_26_aarch64" and legacy.platforms[-1] == "manylinux2014_aarch64"
    assert legacy.opset == {"": 19, "ai.onnx.ml": 3}
    modern = plan_runtime("3.12", "x86_64", "asgi")
    assert modern.glibc == "2.34" and modern.opset is None
    assert [p.split("==")[0] for p in modern.handler_packages] == ["aws-lambda-powertools", "mangum", "starlette"]
    for bad in (("3.9", None, "direct"), (None, "sparc", "direct")):
        with pytest.raises(MpackError):
            plan_runtime(*bad)
    with pytest.raises(ValueError, match="no handler package set 'grpc'"):  # a target's key, never a user's word
        plan_runtime(None, None, "grpc")


def test_lambda_http_modes_are_direct_and_asgi_only():
    """Words of their own: "native" is a --runtime, never a Lambda HTTP mode."""
    for mode in ("direct", "asgi"):
        check_lambda_http(mode)
    for internal in ("gpu", "container", "azure", "grpc", "native"):
        with pytest.raises(MpackError, match=f"--lambda-http {internal} is not a mode") as refused:
            check_lambda_http(internal)
        assert refused.value.hint == "choose one of direct, asgi"


def test_every_event_template_is_recognised_as_its_source():
    expected = {"direct": "direct", "apigw-rest": "apigw-rest", "apigw-http": "apigw-http", "function-url": "function-url", "alb": "alb", "sqs": "sqs"}
    for kind in EVENT_KINDS:
        assert event_kind(wrap_event(kind, {"instances": [[1]]})) == expected[kind]
    assert event_kind([1, 2]) == "direct" and event_kind("text") == "direct"
    with pytest.raises(MpackError, match="unknown event type"):
        wrap_event("kinesis", {})


def test_lambda_zip_limits():
    from mpack.packager.targets import get_target

    target = get_target("lambda")
    assert target.warnings(49 * 2**20) == []
    assert "through S3" in target.warnings(51 * 2**20)[0]
    target.check_limits([BundleEntry("small.py", data=b"x" * 100)])  # well under: no error
    with pytest.raises(MpackError, match="unknown target 'gcp'"):
        get_target("gcp")
