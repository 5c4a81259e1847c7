"""Build-time graph optimization: ONNX Runtime's extended level, saved, so the bundle loads with
optimizations off (less cold start). Extended, not "all": the saved graph must stay portable
across CPU types and architectures (layout-specific rewrites are left to run time hardware).

Extended fusions are made for the provider that runs the graph at build time — the CPU — and some
produce CPU-only operators (``com.microsoft`` FusedGemm, QuickGelu, ...). A graph for a GPU gets the
basic level only (constant folding, eliminations, fusions into standard ONNX operators), and its
session fuses for CUDA when it loads (``handlers/loader.py``): otherwise each CPU-only node would run
on the CPU inside a CUDA session, with copies across the bus, and ``get_providers()`` would not say so."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.convert.onnx import set_opsets


def optimize_graph(onnx_bytes: bytes, level: str = "extended") -> bytes:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mpack-opt-") as folder:
        target = Path(folder) / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
        options.optimized_model_filepath = str(target)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise MpackError(f"ONNX Runtime cannot load the converted model: {str(exc)[:300]}", "the model uses an operator this onnxruntime version lacks; upgrade onnxruntime") from None
        return _declared_opsets(onnx_bytes, target.read_bytes())


def _declared_opsets(original: bytes, optimized: bytes) -> bytes:
    """The optimized graph imports what the original imported (plus version 1 of a contrib domain
    its fused nodes use), not every domain at the build machine's onnxruntime's newest version —
    which an older runtime in the bundle refuses to load (ai.onnx.ml 5 in onnxruntime 1.16)."""
    import onnx

    before, after = onnx.load_from_string(original), onnx.load_from_string(optimized)
    versions = {o.domain: o.version for o in before.opset_import}
    used = {node.domain for node in after.graph.node}
    for domain in sorted(used - versions.keys()):
        versions[domain] = 1
    set_opsets(after, versions)
    after.ir_version = min(before.ir_version, _lowest_ir_version(versions, before.ir_version))
    return after.SerializeToString()


def _lowest_ir_version(versions: dict[str, int], fallback: int) -> int:
    """The IR version its standard opsets need: onnx's writer stamps its newest (14 for onnx 1.20),
    which a bundle's older onnxruntime refuses (onnxruntime-gpu 1.31 reads up to 13). The parity
    check then runs on the lowered graph, so a graph that needed more is caught at build time."""
    from onnx import helper

    standard = [helper.make_opsetid(domain, version) for domain, version in versions.items() if domain in ("", "ai.onnx", "ai.onnx.ml")]
    try:
        return helper.find_min_ir_version_for(standard) if standard else fallback
    except (ValueError, KeyError):  # an opset newer than this onnx knows
        return fallback
