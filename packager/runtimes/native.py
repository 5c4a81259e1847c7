"""``--runtime native``: the model shipped as itself with its own framework's libraries (asked for;
a custom pyfunc always; on image targets when ONNX cannot express it), scored during the build in
the model's own environment."""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.build_state import Artifact


class NativeRuntime:
    name = "native"
    standard_library = False
    ships_model_as_itself = True
    handler_modules = ("native_model", "tensor_feeds")  # the loader's native branch; the protocol's numpy feeds

    def why_not(self, unit, state) -> str | None:
        if not unit.converted.native:
            return "the model converts to ONNX"
        return None

    def prepare(self, unit, state) -> list[Artifact]:
        from mpack.packager.check.parity import scoring_manifest

        converted = unit.converted
        if state.options.precision in ("fp32", "fp16"):
            precision = state.options.precision
            raise MpackError(f"--precision {precision} sets an ONNX graph's precision; this {converted.flavor} model ships as itself (native runtime)", f"drop --precision {precision}, or use a model ONNX can express")
        _check_pickled_python(converted, state.plan.python)
        data = converted.model_bytes
        state.progress.note(f"{converted.flavor} shipped as itself ({converted.model_file}, {len(data) / 1024:.0f} KiB): {', '.join(converted.native['requirements'])}")
        # a native model answers with its own libraries: scored where they are, its environment
        service = unit.converter.scoring(scoring_manifest(converted), data)
        return [Artifact("native", converted.model_file, data, service, libraries=tuple(converted.native["requirements"]))]

    def plan(self, base, artifact):
        from mpack.packager.bundle.runtime_plan import native_plan

        return native_plan(base, list(artifact.libraries))


def _check_pickled_python(converted, python: str) -> None:
    """A cloudpickled model holds bytecode of the Python it was pickled under: only that minor version runs it."""
    pickled_under = converted.converter.get("python")
    if converted.flavor == "python_function" and pickled_under and pickled_under != python:
        raise MpackError(
            f"the custom pyfunc model was loaded under Python {pickled_under} and the bundle targets Python {python}: cloudpickled code does not move between Python versions",
            f"build with --python {pickled_under}",
        )
