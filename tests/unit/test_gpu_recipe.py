"""The gpu image's recipe and runtime plan, from a synthetic installed site (the real one is
onnxruntime-gpu with gigabytes of CUDA wheels): layers, labels, pins and the CUDA wheels chosen."""

from __future__ import annotations

import json

import pytest

from mpack.infra.errors import MpackError
from mpack.packager.bundle.dependencies import cuda_requirements
from mpack.packager.bundle.runtime_plan import cuda_major, gpu_release, plan_runtime
from mpack.packager.image.labels import image_labels
from mpack.packager.targets import get_target


def test_cuda_major_is_pinned_to_the_onnxruntime_version():
    assert (cuda_major("1.26.0"), cuda_major("1.27.0"), cuda_major("1.32.0")) == ("12", "13", "13")
    assert gpu_release("1.32.0", ["1.31.1", "1.31.0", "1.26.0"]) == "1.31.1"  # the GPU wheels trail the CPU ones
    assert gpu_release("1.26.2", ["1.31.1", "1.26.0", "1.9.0"]) == "1.26.0"
    with pytest.raises(MpackError, match="no onnxruntime-gpu release up to 1.10.0"):
        gpu_release("1.10.0", ["1.31.1"])


def test_the_gpu_plan_ships_an_onnxruntime_gpu_release_from_the_index():
    """Asks the real package index (pip index versions), as the build does."""
    plan = plan_runtime("3.11", "x86_64", "gpu", 28)
    assert plan.describe()["kind"] == "gpu" and plan.describe()["cuda"] == cuda_major(plan.onnxruntime)
    assert [p.split("==")[0] for p in plan.handler_packages] == ["starlette", "uvicorn"]


def test_the_cuda_wheels_are_exactly_onnxruntime_gpus_extras(tmp_path):
    info = tmp_path / "onnxruntime_gpu-1.32.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.32.0\n"
        "Requires-Dist: numpy>=1.21\nRequires-Dist: protobuf\n"
        'Requires-Dist: nvidia-cuda-runtime-cu13~=13.0; extra == "cuda"\n'
        'Requires-Dist: nvidia-cublas-cu13~=13.0; extra == "cuda"\n'
        "Requires-Dist: nvidia-cudnn-cu13~=9.0; extra == 'cudnn'\n"
        'Requires-Dist: tensorrt; extra == "tensorrt"\n'
    )
    assert cuda_requirements(tmp_path, "onnxruntime-gpu") == ["nvidia-cuda-runtime-cu13~=13.0", "nvidia-cublas-cu13~=13.0", "nvidia-cudnn-cu13~=9.0"]
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.18.0\nRequires-Dist: numpy\n")
    with pytest.raises(MpackError, match="no \\[cuda,cudnn\\] extras"):
        cuda_requirements(tmp_path, "onnxruntime-gpu")


def test_the_gpu_recipe_puts_cuda_libraries_model_and_app_in_layers_of_their_own(tmp_path):
    site = tmp_path / "site"
    for name in ("onnxruntime/capi/onnxruntime_pybind11_state.so", "numpy/__init__.pyc", "nvidia/cublas/lib/libcublas.so.13", "nvidia/cudnn/lib/libcudnn.so.9"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"x")
    manifest = {
        "mpack_version": "0.1.0",
        "model": {"name": "fraud", "version": "3", "flavor": "sklearn", "source": "models:/fraud/3", "sha256": "ab" * 32, "file": "model.onnx"},
        "runtime": {"python": "3.11", "kind": "gpu", "onnxruntime": "1.32.0", "cuda": "13"},
    }
    target = get_target("gpu")
    from mpack.packager.build_state import BundleFile
    from mpack.packager.runtimes import RUNTIMES
    from mpack.packager.stages.package import handler_modules_of

    files = [BundleFile("model.onnx", b"onnx"), BundleFile("mpack.json", json.dumps(manifest).encode())]
    recipe = target.recipe("python:3.11-slim", site, files, handler_modules_of(target, RUNTIMES["onnx"], "direct"), tmp_path / "work", False, image_labels(manifest, "gpu"))
    layers = {layer.name: layer for layer in recipe.layers}
    assert list(layers) == ["deps", "cuda", "model", "app"]
    assert not (layers["deps"].source / "nvidia").exists() and (layers["deps"].source / "onnxruntime/capi/onnxruntime_pybind11_state.so").is_file()
    assert sorted(p.name for p in layers["model"].source.iterdir()) == ["model.onnx", "mpack.json"]
    assert {p.stem for p in (layers["app"].source / "mpack" / "handlers").glob("*.py")} >= {"container_main", "container_app", "gpu_session", "batching"}
    assert not {p.stem for p in (layers["app"].source / "mpack" / "handlers").glob("*.py")} & {"lambda_function", "azure_function", "micro_runtime", "native_model"}
    assert layers["cuda"].destination == "/opt/mpack/deps/nvidia" and (layers["cuda"].source / "cublas/lib/libcublas.so.13").is_file()
    assert (site / "nvidia").is_dir()  # the runtime cache is left as it was
    assert recipe.labels["io.mpack.onnxruntime"] == "1.32.0" and recipe.labels["io.mpack.cuda"] == "13" and recipe.base == "python:3.11-slim"
    assert recipe.environment["NVIDIA_VISIBLE_DEVICES"] == "all" and recipe.entrypoint[-1] == "mpack.handlers.container_main"
    assert target.default_tag("fraud", "3").endswith("3-gpu")


def _mlp_graph() -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name) for name, shape in (("w1", (16, 32)), ("b1", (32,)), ("w2", (32, 4)))]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m"]),
        helper.make_node("Add", ["m", "b1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["s"]),
        helper.make_node("Mul", ["z", "s"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_gpu_graph_keeps_standard_operators_and_is_fused_when_its_session_loads():
    """The CPU's extended fusions make CPU-only operators (FusedGemm, QuickGelu), which a CUDA
    session would run on the CPU: the gpu target optimizes at the basic level, its session fuses at load."""
    import numpy as np
    import onnx

    from mpack.handlers.loader import create_session
    from mpack.packager.convert.optimize import optimize_graph

    graph = _mlp_graph()
    domains = lambda data: {node.domain or "ai.onnx" for node in onnx.load_from_string(data).graph.node}  # noqa: E731
    assert "com.microsoft" in domains(optimize_graph(graph, getattr(get_target("lambda"), "graph_optimization", "extended")))
    for_gpu = optimize_graph(graph, get_target("gpu").graph_optimization)
    assert domains(for_gpu) == {"ai.onnx"}
    x = np.random.default_rng(1).normal(size=(64, 16)).astype(np.float32)
    expected = create_session(graph, 1).run(["y"], {"x": x})[0]
    fused_at_load = create_session(for_gpu, 1, optimize=True)
    assert np.abs(fused_at_load.run(["y"], {"x": x})[0] - expected).max() < 1e-4
