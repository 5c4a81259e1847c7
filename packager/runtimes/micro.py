"""``--runtime micro``: the graph compiled to standard-library Python (packager/micro), for targets
that can ship a bundle without libraries (Lambda zips): no onnxruntime or numpy to import, a cold
start of the interpreter's own. ``auto`` weighs it against onnxruntime by measurement (stages/choose.py)."""

from __future__ import annotations

from mpack.packager.build_state import Artifact
from mpack.packager.bundle.runtime_plan import DIRECT_HTTP


class MicroRuntime:
    name = "micro"
    standard_library = True
    ships_model_as_itself = False
    handler_modules = ("micro_runtime", "micro_kernels", "row_feeds")  # the loader's micro branch, what compiled models import, the protocol's row feeds

    def why_not(self, unit, state) -> str | None:
        from mpack.handlers.row_feeds import one_matrix
        from mpack.handlers.signature import InputSignature

        target, converted = state.target, unit.converted
        if not target.standard_library_bundles:
            return f"--runtime micro builds Lambda zips (--target lambda), not --target {target.name}"
        if state.options.lambda_http != DIRECT_HTTP:
            return f"--runtime micro answers HTTP events directly; --lambda-http {state.options.lambda_http} needs Mangum and Starlette"
        if converted.native:
            return "the model is shipped as itself (--runtime native)"
        if state.options.precision in ("fp32", "fp16"):
            return f"--precision {state.options.precision} sets an ONNX graph's precision; the micro runtime computes in Python floats (float64)"
        if converted.signature["layout"] == "tensors" and one_matrix(InputSignature.from_manifest(converted.signature)) is None:
            return "the micro runtime serves models with a column signature or one [rows, features] float tensor; this one takes other tensors"
        return None

    def prepare(self, unit, state) -> list[Artifact]:
        """The compiled module (``Unsupported`` names what does not compile)."""
        from mpack.packager.check.parity import scoring_manifest
        from mpack.packager.check.scoring import scoring_service
        from mpack.packager.micro.compiler import MICRO_MODULE, compile_graph

        converted = unit.converted
        shapes = {i["name"]: i.get("shape") for i in converted.signature.get("inputs", ())}
        program = compile_graph(converted.onnx_bytes, shapes)
        source = program.source.encode()
        state.progress.note(f"compiled to standard-library Python for --runtime micro ({len(source) / 1024:.0f} KiB, {len(program.operators)} operators)")
        service = scoring_service({**scoring_manifest(converted), "micro": program.contract()}, source)  # compiled once: parity, measurement, verification
        return [Artifact("micro", MICRO_MODULE, source, service, contract={"micro": program.contract()}, required=state.options.runtime == self.name, program=program)]

    def plan(self, base, artifact):
        from mpack.packager.bundle.runtime_plan import micro_plan

        return micro_plan(base)
