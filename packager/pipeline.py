"""The build, one direction: source -> resolved model -> converted, optimized graph (parity-checked)
-> runtime libraries -> bundle -> verification. I/O stays in the stage modules; this one orders
them, times them and reports."""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from mpack.handlers.protocol import ScoringService
from mpack.infra.errors import MpackError
from mpack.infra.functions_host.app_config import DEFAULT_INSTANCE_MEMORY_MB
from mpack.packager.bundle.dependencies import InstalledRuntime, default_cache_dir, install_runtime
from mpack.packager.bundle.manifest import build_manifest, manifest_bytes
from mpack.packager.bundle.other_python import prepare_other_python, target_python
from mpack.packager.bundle.runtime_plan import check_lambda_http, micro_plan, native_plan, plan_runtime
from mpack.packager.bundle.zip_writer import check_destination, partial_path, publish, write_zip, writing
from mpack.packager.check.parity import check_parity, describe_failure, parity_requests, scoring_manifest
from mpack.packager.check.verify import ASGI_STACK, FORBIDDEN_AT_RUNTIME, skipped
from mpack.packager.convert.optimize import optimize_graph
from mpack.packager.convert.precision import RangeProbe, check_precision, default_tolerance, halve_precision
from mpack.packager.convert.registry import ConversionOptions, LocalConverter, model_flavor, read_model
from mpack.packager.micro.choice import RuntimeChoice, choose, cold_start_ms, micro_candidate, warm_latency
from mpack.packager.micro.compiler import MICRO_MODULE
from mpack.packager.source.environment import check_env_manager, local_environment, uv_environment
from mpack.packager.source.examples import first_rows, load_sample_data, parity_records, scoring_request, tensor_request
from mpack.packager.source.requirements import logged_environment
from mpack.packager.source.resolve import parse_source, resolve
from mpack.packager.source.sklearn_model import PICKLE_RISK, is_pickle
from mpack.packager.targets import check_target_options, get_target
from mpack.packager.targets.gpu_image import DEFAULT_BATCH_ROWS as GPU_BATCH_ROWS

RUNTIMES = ("auto", "onnx", "native", "micro")
MICRO_FORBIDDEN = ("numpy", "onnxruntime", "aws_lambda_powertools")  # a micro bundle runs on the standard library


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
    lambda_http: str = "native"
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
    precision: str = "fp32"  # --target gpu: fp16 halves the graph's float32 weights and arithmetic (inputs and outputs stay float32)

    def recorded(self) -> dict:
        """The options that shape the bundle, stored in its manifest (no host paths)."""
        recorded = {"target": self.target, "lambda_http": self.lambda_http, "tolerance": self.tolerance}
        if self.target == "azure":
            recorded.update(auth=self.auth or "function", instance_memory_mb=self.instance_memory_mb or DEFAULT_INSTANCE_MEMORY_MB)
        if self.target in ("container", "gpu"):  # the server's defaults; MPACK_MAX_BATCH_* override them at run time
            rows = self.max_batch_size if self.max_batch_size is not None else (GPU_BATCH_ROWS if self.target == "gpu" else 0)
            recorded.update(max_batch_size=rows, max_batch_wait_ms=2.0 if self.max_batch_wait_ms is None else self.max_batch_wait_ms)
        if self.target == "gpu":
            recorded.update(require_gpu=self.require_gpu is not False, precision=self.precision)
        return recorded


@dataclass
class BuildReport:
    artifact: Path | str  # the zip, or the image tag
    sha256: str
    target: str
    handler: str
    manifest: dict
    zipped_bytes: int
    unzipped_bytes: int
    contributors: tuple
    parity: dict
    verification: dict
    dependencies: dict
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    image: dict | None = None  # image targets: tag, id, sizes, layer digests
    runtime_choice: dict | None = None  # Lambda zips: micro vs onnxruntime, measured, and why

    def to_dict(self) -> dict:
        artifact = {"image": self.image} if self.image else {"path": str(self.artifact), "sha256": self.sha256, "zipped_bytes": self.zipped_bytes, "unzipped_bytes": self.unzipped_bytes}
        return {
            "ok": True,
            "artifact": artifact,
            "size_report": {"top_contributors": list(self.contributors)},
            "target": self.target,
            "handler": self.handler,
            "model": {k: self.manifest["model"][k] for k in ("name", "version", "source", "flavor", "task", "sha256")},
            "runtime": self.manifest["runtime"],
            "parity": self.parity,
            "verification": self.verification,
            "dependencies": self.dependencies,
            "timings_s": self.timings,
            "warnings": self.warnings,
            "runtime_choice": self.runtime_choice,
        }


def build(options: BuildOptions, progress: Progress | None = None) -> BuildReport:
    progress = progress or SilentProgress()
    timings: dict[str, float] = {}
    warnings: list[str] = []

    @contextmanager
    def stage(name: str):
        started = time.perf_counter()
        with progress.stage(name):
            yield
        timings[name] = round(time.perf_counter() - started, 3)

    target = get_target(options.target)
    check_precision(options.precision)
    check_lambda_http(options.lambda_http)
    if options.tolerance is None:
        options = replace(options, tolerance=default_tolerance(options.precision))
    runtime = plan_runtime(target_python(options.python, target), options.arch, target.runtime_packages(options.lambda_http), target.glibc_minor)
    if not 0 <= options.tolerance < 1:
        raise MpackError(f"--tolerance {options.tolerance} is out of range", "use a small non-negative number such as 1e-5")
    if options.output is not None and target.kind != "image":
        check_destination(options.output)  # before minutes of building, not after
    check_env_manager(options.env_manager)
    check_target_options(target, options)
    with tempfile.TemporaryDirectory(prefix="mpack-build-") as folder, ExitStack() as scope:
        work = Path(folder)
        with stage("resolve"):
            resolved = resolve(parse_source(options.model), work, options.tracking_uri, options.registry_uri)
            model = read_model(resolved)
            progress.note(f"{resolved.source.uri} -> {resolved.name} version {resolved.version}")
        with stage("convert"):
            columns = model.columns if model and model.columns else ()
            sample = load_sample_data(options.sample_data, columns) if options.sample_data else None
            example = sample or (model.input_example if model else None)
            if options.allow_pickle and model and model.flavor("sklearn") and is_pickle(model.flavor("sklearn")):
                warning = f"loading the model's pickle file with --allow-pickle: {PICKLE_RISK}"
                warnings.append(warning)
                progress.warn(warning)
            conversion = ConversionOptions(trusted_types=options.trusted_types, opset=runtime.opset, allow_pickle=options.allow_pickle)
            converter = _model_converter(model, options, scope, progress)
            converted = _convert(resolved, model, example, conversion, options, target, progress, converter)
            if converted.native:
                if options.precision == "fp16":
                    raise MpackError(f"--precision fp16 halves an ONNX graph; this {converted.flavor} model ships as itself (native runtime)", "drop --precision fp16, or use a model ONNX can express")
                _check_native_python(converted, runtime)
                runtime = native_plan(runtime, converted.native["requirements"])
                optimized = converted.model_bytes
                progress.note(f"{converted.flavor} shipped as itself ({converted.model_file}, {len(optimized) / 1024:.0f} KiB): {', '.join(converted.native['requirements'])}")
            else:
                optimized = optimize_graph(converted.onnx_bytes, getattr(target, "graph_optimization", "extended"))
                progress.note(f"{converted.flavor} -> ONNX ({converted.signature['layout']} layout, {len(optimized) / 1024:.0f} KiB)")
                if options.precision == "fp16":
                    full_precision, optimized = optimized, halve_precision(optimized)
                    progress.note(f"float32 weights and arithmetic halved to float16 ({len(optimized) / 1024:.0f} KiB), inputs and outputs float32; parity tolerance {options.tolerance:g}")
            program, why_not = micro_candidate(options.runtime, target, options.lambda_http, converted) if not converted.native else (None, "")
            if program is not None:
                progress.note(f"compiled to standard-library Python for --runtime micro ({len(program.source) / 1024:.0f} KiB, {len(program.operators)} operators)")
        with stage("parity"):
            records, request, source = _check_rows(converted, sample, example, columns)
            # a native model answers with its own libraries: scored where they are, its environment
            candidate = converter.scoring(scoring_manifest(converted), optimized) if converted.native else None
            near_ties = 0.0
            if options.precision == "fp16":  # scored with every float16 intermediate watched; labels closer than fp16 can order are near ties
                probe, near_ties = RangeProbe(optimized, full_precision), options.tolerance
                candidate = ScoringService(scoring_manifest(converted), probe)
            report = check_parity(converted, optimized, parity_requests(converted, records, request), source, options.tolerance, records, candidate, near_ties)
            if options.precision == "fp16":
                probe.check()
                candidate = None  # the bundle's answers come from the halved graph itself
            if not report.passed:
                raise MpackError(
                    f"parity check failed: {describe_failure(report)}",
                    "the converted model answers differently from the original; raise --tolerance if the difference is acceptable",
                )
            worst = max((o.max_scaled_diff or 0.0 for o in report.outputs), default=0.0)
            ties = sum(o.tied_mismatches for o in report.outputs)
            agree = ", labels agree" + (f" (except {ties} {'near ' if near_ties else ''}ties)" if ties else "")
            progress.note(f"{report.rows} rows ({source}): max difference {worst:.2g}" + (agree if converted.task == "classifier" else ""))
            example_request = first_rows(request) if request else scoring_request(records, converted.columns)
            micro = _micro_service(program, converted)  # compiled once: parity, measurement, verification
            micro_report = _micro_parity(micro, converted, optimized, records, request, source, options, progress)
        other = prepare_other_python(runtime, target, options.base_image, options.verify, progress, lambda text: (warnings.append(text), progress.warn(text)))
        compiler = other.compiler if other else None
        with stage("dependencies"):
            if program is not None and options.runtime == "micro" and not runtime.matches_host:
                installed = _no_packages(work, False)  # nothing to install, nothing to measure here
                progress.note(f"no libraries for Python {runtime.python} {runtime.arch}: the micro runtime is the standard library")
            else:
                installed = install_runtime(runtime, options.cache_dir or default_cache_dir(), progress.note, compiler)
                libraries = ", ".join(runtime.model_packages) if runtime.model_packages else f"onnxruntime {runtime.onnxruntime}, numpy {runtime.numpy}"
                progress.note(f"{libraries} for Python {runtime.python} {runtime.arch}" + (" (cached)" if installed.cache_hit else ""))
        choice = None
        if program is not None or options.runtime == "auto" and target.name == "lambda":
            with stage("runtime"):
                choice = _choose_runtime(program, micro, why_not, micro_report, options, target, resolved, converted, optimized, runtime, installed, example_request, work, progress, other)
            if choice.runtime == "micro":
                candidate = micro  # the bundle answers with the compiled model: its expected answers come from it
                runtime, optimized = micro_plan(runtime), choice.program.source.encode()
                installed = _no_packages(work, runtime.matches_host)
                converted = replace(converted, model_file=MICRO_MODULE)
        manifest = build_manifest(
            target=target.name,
            handler=target.handler,
            resolved=resolved,
            converted=converted,
            model_file=converted.model_file,
            model_bytes=optimized,
            runtime=runtime,
            example=example_request,
            options=options.recorded(),
            micro=choice.program.contract() if choice and choice.runtime == "micro" else None,
        )
        if target.kind == "image":
            from mpack.packager.image.pipeline import build_and_verify_image

            image, verification = build_and_verify_image(target, options, resolved, manifest, optimized, installed, runtime, example_request, work, stage, progress)
            return BuildReport(
                artifact=image.tag,
                sha256=image.image_id,
                target=target.name,
                handler=target.handler,
                manifest=manifest,
                zipped_bytes=0,
                unzipped_bytes=image.size_bytes,
                contributors=(),
                parity=report.to_dict(),
                verification=verification.to_dict(),
                dependencies={"cache_hit": installed.cache_hit, "cache_key": installed.key, "precompiled": installed.precompiled},
                timings=timings,
                warnings=warnings,
                image=image.to_dict(),
            )
        destination = options.output or target.default_output(resolved.file_stem)
        with writing(destination):
            check_destination(destination)
            destination.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(destination)
        try:
            with stage("zip"):
                entries = target.entries(installed.site, optimized, manifest_bytes(manifest), work, installed.precompiled if runtime.matches_host else (compiler or False))
                target.check_limits(entries)
                with writing(destination):
                    written = write_zip(entries, partial)
                for warning in target.warnings(written.zipped_bytes):
                    warnings.append(warning)
                    progress.warn(warning)
            with stage("verify"):
                verification = _verify(target, partial, runtime, options, manifest, optimized, example_request, progress, candidate)
            with writing(destination):
                publish(partial, destination)
        finally:
            if partial.exists():
                os.unlink(partial)
    return BuildReport(
        artifact=destination,
        sha256=written.sha256,
        target=target.name,
        handler=target.handler,
        manifest=manifest,
        zipped_bytes=written.zipped_bytes,
        unzipped_bytes=written.unzipped_bytes,
        contributors=written.contributors,
        parity=report.to_dict(),
        verification=verification.to_dict(),
        dependencies={"cache_hit": installed.cache_hit, "cache_key": installed.key, "precompiled": installed.precompiled},
        timings=timings,
        warnings=warnings,
        runtime_choice=choice.to_dict() if choice else None,
    )


def _micro_service(program, converted):
    """The compiled model behind the protocol core, in this process (None without one)."""
    if program is None:
        return None
    from mpack.packager.check.scoring import scoring_service

    return scoring_service({**scoring_manifest(converted), "micro": program.contract()}, program.source.encode())


def _micro_parity(micro, converted, optimized: bytes, records, request, source: str, options: BuildOptions, progress):
    """The compiled model through the same parity gate as the ONNX graph; ``--runtime micro``
    stops on a failure, ``auto`` falls back to onnxruntime."""
    if micro is None:
        return None
    report = check_parity(converted, optimized, parity_requests(converted, records, request), source, options.tolerance, records, micro)
    if not report.passed:
        if options.runtime == "micro":
            raise MpackError(f"parity check failed for the micro runtime: {describe_failure(report)}", "build with --runtime onnx, or raise --tolerance if the difference is acceptable")
        progress.warn(f"the micro runtime's answers differ: {describe_failure(report)}; shipping onnxruntime")
    else:
        worst = max((o.max_scaled_diff or 0.0 for o in report.outputs), default=0.0)
        progress.note(f"micro runtime: {report.rows} rows, max difference {worst:.2g}" + (", labels agree" if converted.task == "classifier" else ""))
    return report


def _choose_runtime(
    program, micro, why_not: str, micro_report, options: BuildOptions, target, resolved, converted, optimized: bytes, runtime, installed, request: dict, work: Path, progress, other=None
) -> RuntimeChoice:
    """Measure both runtimes, then choose (choice.py): warm latency in this interpreter, cold starts
    in fresh processes of the bundle's Python (here, or in its container for another Python)."""
    from mpack.packager.check.scoring import scoring_service

    measured: dict = {}
    timer = other.timer if other else None
    onnxruntime_installed = installed.key != "micro"  # an explicit --runtime micro for another Python installs nothing to compare with
    if program is not None and onnxruntime_installed and (runtime.matches_host or timer is not None):
        services = {"micro": micro, "onnx": scoring_service(scoring_manifest(converted), optimized)}
        for name, service in services.items():
            measured[name] = warm_latency(service, request)
        for name in ("micro", "onnx"):
            micro = name == "micro"
            plan = micro_plan(runtime) if micro else runtime
            model_bytes = program.source.encode() if micro else optimized
            file = MICRO_MODULE if micro else converted.model_file
            manifest = build_manifest(
                target=target.name, handler=target.handler, resolved=resolved, converted=replace(converted, model_file=file), model_file=file, model_bytes=model_bytes,
                runtime=plan, example=request, options=options.recorded(), micro=program.contract() if micro else None,
            )  # fmt: skip
            site = _empty(work / "no-packages") if micro else installed.site
            entries = target.entries(site, model_bytes, manifest_bytes(manifest), work / f"measure-{name}", runtime.matches_host or other.compiler or False)
            measured[name]["cold_start_ms"] = cold_start_ms(entries, work / f"measure-{name}-bundle", request, timer)
        progress.note(
            "measured: micro cold start {m[micro][cold_start_ms]:.0f} ms, one row {m[micro][warm_1_row_us]:.0f} us, 1,000 rows {m[micro][warm_1000_rows_us]:.0f} us; "
            "onnxruntime {m[onnx][cold_start_ms]:.0f} ms, {m[onnx][warm_1_row_us]:.0f} us, {m[onnx][warm_1000_rows_us]:.0f} us".format(m=measured)
        )
    chosen, reason = choose(options.runtime, program, why_not, micro_report is not None and micro_report.passed, measured)
    progress.note(f"runtime: {'micro (standard library only)' if chosen == 'micro' else 'onnxruntime'}: {reason}")
    return RuntimeChoice(chosen, reason, program, measured, micro_report.to_dict() if micro_report else None)


def _empty(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _no_packages(work: Path, precompiled: bool) -> InstalledRuntime:
    """The micro runtime's libraries: none (an empty site folder)."""
    return InstalledRuntime(_empty(work / "no-packages"), True, "micro", precompiled)


def _verify_elsewhere(target, partial: Path, runtime, options: BuildOptions, request: dict, expected, progress):
    """A zip for another Python than this interpreter's is verified in a container of that Python
    when Docker and its image are here; otherwise skipped, saying what would make it run."""
    from mpack.packager.check.verify_container import container_unavailable, verify_in_container

    unavailable = container_unavailable(runtime.python, runtime.arch, options.base_image) if target.name == "lambda" else "only Lambda zips run in a container of their Python"
    if unavailable:
        reason = f"target Python {runtime.python}/{runtime.arch} differs from this interpreter and the bundle was not run: {unavailable}"
        progress.warn(reason)
        return skipped(reason)
    verification = verify_in_container(partial, request, expected, max(options.tolerance, 1e-6), options.cache_dir or default_cache_dir(), options.base_image)
    progress.note(f"answered the input example in a Python {runtime.python} {runtime.arch} container")
    return verification


def _model_converter(model, options: BuildOptions, scope: ExitStack, progress):
    """Where the model is loaded: its own environment (uv, cached), or this interpreter once its
    logged Python and framework versions are checked (local). ONNX needs neither."""
    flavor = model_flavor(model) if model is not None else None
    if model is not None and model.custom_pyfunc:
        flavor = "python_function"  # a custom pyfunc: loaded (natively) in its own environment
    if flavor in (None, "onnx"):
        return LocalConverter()
    logged = logged_environment(model.path, model.flavors, model.mlflow_version)
    if options.env_manager == "local":
        local_environment(logged)
        progress.note(f"loading the model here (--env-manager local): {logged.describe()}")
        return LocalConverter()
    from mpack.packager.convert.in_environment import EnvironmentConverter

    environment = uv_environment(logged, options.cache_dir or default_cache_dir(), progress.note, progress.warn)
    progress.note(f"model environment {environment.key}{' (cached)' if environment.cache_hit else ''}: {logged.describe()}")
    return scope.enter_context(EnvironmentConverter(environment))


def _convert(resolved, model, example, conversion: ConversionOptions, options: BuildOptions, target, progress, converter):
    """ONNX, or the native runtime: when asked, or on image targets when ONNX cannot express the model."""
    from mpack.packager.convert.onnx import from_onnx_file

    if options.runtime not in RUNTIMES:
        raise MpackError(f"--runtime {options.runtime} is not a runtime", f"choose one of {', '.join(RUNTIMES)}")
    if options.runtime == "native" or (model is not None and model.custom_pyfunc and options.runtime == "auto"):
        if model is None:
            raise MpackError("--runtime native needs an MLflow scikit-learn model, not a bare .onnx file", "drop --runtime native")
        converted = converter.convert(model, example, conversion, runtime="native")
    elif model is None:
        converted = from_onnx_file(resolved.path, None, conversion.opset)
    else:
        try:
            converted = converter.convert(model, example, conversion)
        except MpackError as error:
            if not (options.runtime == "auto" and target.kind == "image" and model.flavor("sklearn")):
                raise
            progress.warn(f"{error.message}; shipping the model with scikit-learn instead (--runtime native)")
            converted = converter.convert(model, example, conversion, runtime="native")
    if model is not None and model_flavor(model) != "onnx":
        converted = replace(converted, converter=dict(converted.converter, env_manager=options.env_manager))
    return converted


def _check_native_python(converted, runtime) -> None:
    """A cloudpickled model holds bytecode of the Python it was pickled under: only that minor version runs it."""
    pickled_under = converted.converter.get("python")
    if converted.flavor == "python_function" and pickled_under and pickled_under != runtime.python:
        raise MpackError(
            f"the custom pyfunc model was loaded under Python {pickled_under} and the bundle targets Python {runtime.python}: cloudpickled code does not move between Python versions",
            f"build with --python {pickled_under}",
        )


def _check_rows(converted, sample, example, signature_columns):
    """(records, tensor request, description) the parity gate runs on."""
    if converted.signature["layout"] == "tensors":
        if converted.tensor_check:
            rows = len(next(iter(converted.tensor_check["inputs"].values())))
            return None, converted.tensor_check, f"{rows} tensor rows (the input example, jittered and random)"
        return None, tensor_request(converted.signature["inputs"]), "synthesized tensors"
    origin = "the signature" if signature_columns else "the model's recorded input features (no signature)"
    missing = tuple(c["name"] for c in converted.signature["columns"] if c.get("allow_missing"))
    records, source = parity_records(example, converted.columns, converted.boundary_records, sample, origin, missing)
    return records, None, source


def _verify(target, partial: Path, runtime, options: BuildOptions, manifest: dict, optimized: bytes, request: dict, progress, candidate=None):
    from mpack.packager.check.scoring import scoring_service

    if not options.verify:
        return skipped("disabled with --no-verify")
    expected = (candidate or scoring_service(manifest, optimized)).score_document(request)
    if not runtime.matches_host:
        return _verify_elsewhere(target, partial, runtime, options, request, expected.body["predictions"], progress)
    forbidden = FORBIDDEN_AT_RUNTIME + (ASGI_STACK if options.lambda_http == "native" else ())
    if manifest.get("native"):
        forbidden = ()  # a native model brings its own libraries, whatever they import
    if manifest.get("micro"):
        forbidden += MICRO_FORBIDDEN
    verification = target.verify(partial, request, expected.body["predictions"], max(options.tolerance, 1e-6), forbidden)
    progress.note(f"answered the input example {target.verified_where} (init {verification.init_seconds * 1000:.0f} ms)")
    return verification
