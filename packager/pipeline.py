"""The build, one direction (DESIGN.md §1, §13): a short list of stages over one ``BuildState`` —
resolve, convert, prepare each runtime's candidates, parity, libraries, choose by measurement,
manifest, then the target's packaging — each timed and reported by one loop. The stages live in
packager/stages, runtimes in packager/runtimes, targets in packager/targets."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from mpack.infra.errors import MpackError
from mpack.packager.build_report import BuildReport
from mpack.packager.build_state import BuildState, Unit
from mpack.packager.bundle.other_python import target_python
from mpack.packager.bundle.runtime_plan import check_lambda_http, plan_runtime
from mpack.packager.bundle.zip_writer import check_destination
from mpack.packager.convert.precision import check_precision, default_tolerance
from mpack.packager.runtimes import requested_runtime
from mpack.packager.source.environment import check_env_manager
from mpack.packager.stages.choose import choose_artifacts
from mpack.packager.stages.convert import convert_units
from mpack.packager.stages.dependencies import install_libraries
from mpack.packager.stages.manifest import write_manifest
from mpack.packager.stages.package import build_image_bundle, publish_zip_bundle, push_image_bundle, write_zip_bundle
from mpack.packager.stages.parity import check_candidates
from mpack.packager.stages.prepare import prepare_candidates
from mpack.packager.stages.resolve import resolve_units
from mpack.packager.stages.verify import verify_image_bundle, verify_zip_bundle
from mpack.packager.targets import check_target_options, get_target

__all__ = ["BuildOptions", "BuildReport", "Progress", "SilentProgress", "build", "staged"]

class Progress(Protocol):
    """Where the pipeline reports: a rich display for people, nothing for --json and tests."""

    def stage(self, name: str): ...

    def note(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...


class SilentProgress:
    @contextmanager
    def stage(self, name: str):
        yield

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class BuildOptions:
    model: str
    target: str = "lambda"
    output: Path | None = None
    tracking_uri: str | None = None
    registry_uri: str | None = None
    python: str | None = None
    arch: str | None = None
    tolerance: float | None = None  # None: the precision's own (1e-5; fp16 1e-2)
    sample_data: Path | None = None
    lambda_http: str = "direct"
    trusted_types: tuple[str, ...] = ()
    allow_pickle: bool = False  # --allow-pickle or [tool.mpack] allow_pickle
    cache_dir: Path | None = None
    verify: bool = True
    base_image: str | None = None  # image targets
    tag: str | None = None  # image targets
    push: bool = False  # image targets: push to the registry the tag names
    runtime: str = "auto"  # onnx | native | micro | auto (micro on Lambda zips when it compiles and is fast enough; native on image targets when ONNX cannot express the model)
    env_manager: str = "uv"  # where the model is loaded: its own environment (uv) or this interpreter (local)
    auth: str | None = None  # --target azure: the auth level of the scoring routes [default: function]
    instance_memory_mb: int | None = None  # --target azure: the instance memory the app must fit [default: 2048]
    max_batch_size: int | None = None  # --target container: rows per coalesced model run [default: 0, off]
    max_batch_wait_ms: float | None = None  # --target container: the longest wait for more rows under load [default: 2]
    require_gpu: bool | None = None  # --target gpu: not ready (and why) rather than serving from the CPU [default: on]
    precision: str = "auto"  # auto (float32 where a float64 graph passes the parity gate faster), fp64, fp32, fp16 (--target gpu: half precision)

    def recorded(self) -> dict:
        """The options every target records in its manifest (no host paths); targets add their own."""
        return {"target": self.target, "lambda_http": self.lambda_http, "tolerance": self.tolerance}


STAGES = (
    ("resolve", resolve_units),
    ("convert", convert_units),
    ("prepare", prepare_candidates),
    ("parity", check_candidates),
    ("dependencies", install_libraries),
    ("runtime", choose_artifacts),
    ("manifest", write_manifest),
)
PACKAGING = {  # by the target's kind: its own stages after the common ones
    "zip": (("zip", write_zip_bundle), ("verify", verify_zip_bundle), ("publish", publish_zip_bundle)),
    "image": (("image", build_image_bundle), ("verify", verify_image_bundle), ("push", push_image_bundle)),
}


def build(options: BuildOptions, progress: Progress | None = None) -> BuildReport:
    with staged(options, progress) as state:
        return BuildReport.of(state)


@contextmanager
def staged(options: BuildOptions, progress: Progress | None = None, through: str | None = None):
    """The ``BuildState`` after every stage up to and including ``through`` (all of them: None), alive
    until the context closes — the seam tests and tools drive the build through."""
    progress = progress or SilentProgress()
    target = get_target(options.target)
    options = checked_options(options, target)
    stages = (*STAGES, *PACKAGING[target.kind])
    if through is not None and through not in dict(stages):
        raise ValueError(f"no stage {through!r} for --target {target.name}: {', '.join(dict(stages))}")
    with tempfile.TemporaryDirectory(prefix="mpack-build-") as folder, ExitStack() as scope:
        plan = plan_runtime(target_python(options.python, target), options.arch, target.runtime_packages(options.lambda_http), target.glibc_minor)
        state = BuildState(options, target, Path(folder), scope, progress, plan, units=[Unit(options.model)])
        for name, stage in stages:
            if name == "push" and not options.push:
                continue
            with _timed(state, name):
                stage(state)
            if name == through:
                break
        yield state


def checked_options(options: BuildOptions, target) -> BuildOptions:
    """Every option checked before minutes of building, not after; the tolerance defaulted by precision."""
    check_precision(options.precision)
    check_lambda_http(options.lambda_http)
    requested_runtime(options.runtime)
    if options.tolerance is None:
        options = replace(options, tolerance=default_tolerance(options.precision))
    if not 0 <= options.tolerance < 1:
        raise MpackError(f"--tolerance {options.tolerance} is out of range", "use a small non-negative number such as 1e-5")
    if options.output is not None and target.kind != "image":
        check_destination(options.output)
    check_env_manager(options.env_manager)
    check_target_options(target, options)
    return options


@contextmanager
def _timed(state, name: str):
    import time

    started = time.perf_counter()
    with state.progress.stage(name):
        yield
    state.timings[name] = round(time.perf_counter() - started, 3)
