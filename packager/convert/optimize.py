"""Build-time graph optimization: ONNX Runtime's extended level, saved, so the bundle loads with
optimizations off (less cold start). Extended, not "all": the saved graph must stay portable
across CPU types and architectures (layout-specific rewrites are left to run time hardware)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mpack.infra.errors import MpackError


def optimize_graph(onnx_bytes: bytes) -> bytes:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mpack-opt-") as folder:
        target = Path(folder) / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(target)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise MpackError(f"ONNX Runtime cannot load the converted model: {str(exc)[:300]}", "the model uses an operator this onnxruntime version lacks; upgrade onnxruntime") from None
        return target.read_bytes()
