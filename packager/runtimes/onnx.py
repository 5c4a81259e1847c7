"""``--runtime onnx``: the converted graph, optimized, on onnxruntime — at the precision the build
chooses (``--precision auto|fp64|fp32|fp16``).

A graph that computes in float64 (an MLP or a linear model fitted on float64 data) often answers
within the tolerance in float32 at a fraction of the cost; ``auto`` builds both and lets the parity
gate and the measurement choose (stages/choose.py). Trees keep scikit-learn's own float32 cast: they
have no float64 arithmetic to weigh. ``fp16`` (gpu images) halves the float32 graph.
"""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.build_state import Artifact


class OnnxRuntime:
    name = "onnx"
    standard_library = False
    ships_model_as_itself = False
    handler_modules = ("tensor_feeds",)  # the protocol's numpy feeds for tensor signatures

    def why_not(self, unit, state) -> str | None:
        if unit.converted.native:
            return f"the {unit.converted.flavor} model ships as itself (--runtime native)"
        return None

    def prepare(self, unit, state) -> list[Artifact]:
        from mpack.packager.convert.float32_variant import Float32Unavailable, computes_in_float64, float32_variant
        from mpack.packager.convert.optimize import optimize_graph

        converted, precision, progress, tolerance = unit.converted, state.options.precision, state.progress, state.options.tolerance
        level = getattr(state.target, "graph_optimization", "extended")
        graph = optimize_graph(converted.onnx_bytes, level)
        try:
            in_float64 = computes_in_float64(converted.onnx_bytes)  # read before optimizing: the rewrite knows standard operators only
        except Float32Unavailable as error:  # onnx cannot type every value (tree ensembles' outputs): nothing it can rewrite
            if precision == "fp32":
                raise MpackError(f"--precision fp32 cannot rewrite this graph: {error.message}", "build with --precision auto (the graph ships as converted)") from None
            in_float64 = False
            progress.note(f"no float64 arithmetic found to weigh: {error.message}")
        progress.note(f"{converted.flavor} -> ONNX ({converted.signature['layout']} layout, {len(graph) / 1024:.0f} KiB{', computes in float64' if in_float64 else ''})")
        original = self._artifact(converted, graph, "fp64" if in_float64 else "fp32")
        if precision == "fp64" or (not in_float64 and precision != "fp16"):
            return [original]  # float32 already (or trees behind scikit-learn's own cast): nothing to weigh
        try:
            single = optimize_graph(float32_variant(converted.onnx_bytes), level) if in_float64 else graph
        except Float32Unavailable as error:
            if precision != "auto":
                raise MpackError(f"--precision {precision} needs the float64 graph in float32, and it cannot be: {error.message}", "build with --precision auto or fp64 (the graph ships as converted)") from None
            progress.note(f"no float32 variant: {error.message}")
            unit.not_weighed["onnx fp32"] = error.message
            return [original]
        if precision == "fp16":
            return [self._halved(converted, single, tolerance, progress)]
        variant = self._artifact(converted, single, "fp32", near_ties=tolerance, required=precision == "fp32")
        if precision == "fp32":
            return [variant]
        progress.note(f"float32 variant built ({len(single) / 1024:.0f} KiB): weighed against float64 by the parity gate and by measurement")
        return [original, variant]

    def plan(self, base, artifact):
        return base

    @staticmethod
    def _artifact(converted, graph: bytes, precision: str, near_ties: float = 0.0, required: bool = True) -> Artifact:
        from mpack.packager.check.parity import scoring_manifest
        from mpack.packager.check.scoring import scoring_service

        return Artifact("onnx", converted.model_file, graph, scoring_service(scoring_manifest(converted), graph), precision=precision, near_ties=near_ties, required=required)

    def _halved(self, converted, graph: bytes, tolerance: float, progress) -> Artifact:
        """float16 weights and arithmetic, scored with every float16 intermediate watched: labels
        closer than float16 can order are near ties."""
        from mpack.handlers.protocol import ScoringService
        from mpack.packager.check.parity import scoring_manifest
        from mpack.packager.convert.precision import RangeProbe, halve_precision

        halved = halve_precision(graph)
        progress.note(f"float32 weights and arithmetic halved to float16 ({len(halved) / 1024:.0f} KiB), inputs and outputs float32; parity tolerance {tolerance:g}")
        artifact = self._artifact(converted, halved, "fp16", near_ties=tolerance)
        artifact.probe = RangeProbe(halved, graph)
        artifact.checking = ScoringService(scoring_manifest(converted), artifact.probe)
        return artifact
