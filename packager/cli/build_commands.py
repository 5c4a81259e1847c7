"""`mpack build` and `mpack base-image`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal, Optional

import typer
from mpack.infra.errors import MpackError
from mpack.packager.bundle.runtime_plan import LAMBDA_HTTP_MODES
from mpack.packager.cli.boundary import error_boundary as _error_boundary
from mpack.packager.cli.boundary import stderr as _stderr
from rich.markup import escape

# The modes as choices: anything else is a usage error before any work starts.
LambdaHttp = Literal[LAMBDA_HTTP_MODES]


# The build's options, declared once here so that the command reads as its flow.
_MODEL = typer.Option(..., "--model", "-m", help="models:/NAME@ALIAS, models:/NAME/VERSION|STAGE, runs:/RUN_ID/PATH, a model folder or a .onnx file.")
_TARGET = typer.Option(
    "lambda", "--target", "-t", help="What to build: lambda (zip), lambda-image, container (HTTP image), gpu (HTTP image on onnxruntime-gpu with its CUDA wheels) or azure (Functions app zip)."
)
_OUTPUT = typer.Option(None, "--output", "-o", help="Where to write the bundle [default: dist/<model>-<version>-<target>.zip].")
_TRACKING_URI = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking store.")
_REGISTRY_URI = typer.Option(None, "--registry-uri", envvar="MLFLOW_REGISTRY_URI", help="MLflow model registry [default: the tracking store].")
_PYTHON = typer.Option(
    None,
    "--python",
    help="Target Python: 3.11, 3.12, 3.13 or 3.14 [default: $MPACK_PYTHON, else for Lambda zips the newest (3.14, compiled and verified in a container of it), for other targets this interpreter's].",
)
_ARCH = typer.Option(None, "--arch", help="Target architecture: x86_64 or arm64 [default: this machine's].")
_TOLERANCE = typer.Option(None, "--tolerance", help="Largest accepted difference between the original and the converted model [default: 1e-5; 1e-2 with --precision fp16].")
_SAMPLE_DATA = typer.Option(None, "--sample-data", help="CSV or JSON rows for the parity check [default: the model's input example].")
_LAMBDA_HTTP = typer.Option("direct", "--lambda-http", help="Lambda HTTP events: direct (answered by mpack's handler, fastest) or asgi (through Mangum, the same app as containers).")
_TRUST_TYPE = typer.Option([], "--trust-type", help="A type to allow when loading a skops model file (repeatable).")
_ALLOW_PICKLE = typer.Option(False, "--allow-pickle", help="Load a pickle/cloudpickle model file (runs code from it) [also: allow_pickle = true under [tool.mpack]].")
_CACHE_DIR = typer.Option(None, "--cache-dir", envvar="MPACK_CACHE_DIR", help="Cache for runtime wheels [default: ~/.cache/mpack].")
_VERIFY = typer.Option(True, "--verify/--no-verify", help="Run the finished bundle (or image) on the input example before publishing it.")
_BASE_IMAGE = typer.Option(
    None,
    "--base-image",
    help="Image targets: the base image, already on this machine [default: python:<py>-slim]; Lambda zips for another Python: the image of that Python that compiles and verifies them [default: built from Debian packages].",
)
_TAG = typer.Option(None, "--tag", help="Image targets: the image reference [default: mpack/<model>:<version>-<target>].")
_PUSH = typer.Option(False, "--push", help="Image targets: push to the registry the tag names, after the image answered.")
_PLATFORM = typer.Option(None, "--platform", help="Image targets: linux/amd64 or linux/arm64 (the same as --arch x86_64|arm64).")
_RUNTIME = typer.Option(
    "auto",
    "--runtime",
    help="onnx, micro (Lambda zips: the graph compiled to standard-library Python, no onnxruntime or numpy), native (ship scikit-learn itself; image targets) or auto (micro on Lambda zips when every operator compiles and one row answers within 1 ms; native only when ONNX cannot express the model).",
)
_ENV_MANAGER = typer.Option(
    "uv", "--env-manager", help="Where the model is loaded and converted: uv (its own logged environment, cached) or local (this interpreter, after checking the logged versions)."
)
_AUTH = typer.Option(None, "--auth", help="--target azure: auth level of the scoring routes: function (a key), anonymous or admin [default: function].")
_INSTANCE_MEMORY = typer.Option(None, "--instance-memory", help="--target azure: Flex Consumption instance memory the app must fit: 512, 2048 or 4096 MB [default: 2048].")
_MAX_BATCH_SIZE = typer.Option(
    None, "--max-batch-size", help="--target container|gpu: coalesce concurrent requests into model runs of up to this many rows (0: off) [default: 0, gpu 64; MPACK_MAX_BATCH_SIZE at run time]."
)
_MAX_BATCH_WAIT_MS = typer.Option(None, "--max-batch-wait-ms", help="--target container|gpu: under load, wait up to this long for more rows before a run (a lone request never waits) [default: 2].")
_REQUIRE_GPU = typer.Option(
    None, "--require-gpu/--no-require-gpu", help="--target gpu: report not ready, naming the missing CUDA part, rather than serve from the CPU [default: on; MPACK_REQUIRE_GPU at run time]."
)
_PRECISION = typer.Option(
    "auto",
    "--precision",
    help="auto (a graph computing in float64 ships as float32 when that passes the parity gate and is faster, measured), fp64, fp32, or fp16 (--target gpu: half precision, checked at its own tolerance).",
)
_AS_JSON = typer.Option(False, "--json", help="Print one machine-readable build report on stdout.")
_DEBUG = typer.Option(False, "--debug", help="Show tracebacks.")


def build(
    ctx: typer.Context,
    model: str = _MODEL,
    target: str = _TARGET,
    output: Optional[Path] = _OUTPUT,
    tracking_uri: Optional[str] = _TRACKING_URI,
    registry_uri: Optional[str] = _REGISTRY_URI,
    python: Optional[str] = _PYTHON,
    arch: Optional[str] = _ARCH,
    tolerance: Optional[float] = _TOLERANCE,
    sample_data: Optional[Path] = _SAMPLE_DATA,
    lambda_http: LambdaHttp = _LAMBDA_HTTP,
    trust_type: list[str] = _TRUST_TYPE,
    allow_pickle: bool = _ALLOW_PICKLE,
    cache_dir: Optional[Path] = _CACHE_DIR,
    verify: bool = _VERIFY,
    base_image: Optional[str] = _BASE_IMAGE,
    tag: Optional[str] = _TAG,
    push: bool = _PUSH,
    platform: Optional[str] = _PLATFORM,
    runtime: str = _RUNTIME,
    env_manager: str = _ENV_MANAGER,
    auth: Optional[str] = _AUTH,
    instance_memory: Optional[int] = _INSTANCE_MEMORY,
    max_batch_size: Optional[int] = _MAX_BATCH_SIZE,
    max_batch_wait_ms: Optional[float] = _MAX_BATCH_WAIT_MS,
    require_gpu: Optional[bool] = _REQUIRE_GPU,
    precision: str = _PRECISION,
    as_json: bool = _AS_JSON,
    debug: bool = _DEBUG,
) -> None:
    """Build a deployable bundle from a model."""
    from mpack.packager.pipeline import BuildOptions
    from mpack.packager.pipeline import build as run_build
    from mpack.packager.progress import RichProgress

    if platform is not None:
        with _error_boundary(as_json, debug):
            arch = _arch_of_platform(platform, arch)

    options = _build_options(BuildOptions, {**ctx.params, "arch": arch})
    with _error_boundary(as_json, debug):
        if not allow_pickle:
            from mpack.packager.cli.build_settings import allow_pickle_setting

            options = replace(options, allow_pickle=allow_pickle_setting(Path.cwd()))
        report = run_build(options, RichProgress(_stderr))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_summary(report)


RENAMED = {"trust_type": "trusted_types", "instance_memory": "instance_memory_mb"}  # flag names that read better than the field names


def _build_options(options_type, params: dict):
    """The command's parameters as the pipeline's options: the same names, but for ``RENAMED``."""
    from dataclasses import fields

    given = {RENAMED.get(name, name): value for name, value in params.items()}
    given["trusted_types"] = tuple(given["trusted_types"])
    return options_type(**{f.name: given[f.name] for f in fields(options_type) if f.name in given})


def _arch_of_platform(platform: str, arch: str | None) -> str:
    arches = {"linux/amd64": "x86_64", "linux/arm64": "arm64", "linux/arm64/v8": "arm64"}
    if platform not in arches:
        raise MpackError(f"--platform {platform} is not a platform mpack builds for", "use linux/amd64 or linux/arm64")
    if arch is not None and arch != arches[platform]:
        raise MpackError(f"--platform {platform} contradicts --arch {arch}", "give one of them")
    return arches[platform]


def _print_summary(report) -> None:
    mib = 2**20
    if report.image:
        image = report.image
        _stderr.print(
            f"\n[bold]{image['tag']}[/bold]  {image['size_bytes'] / mib:.0f} MB ({(image['size_bytes'] - image['base_size_bytes']) / mib:.0f} MB above its base), {len(image['layers'])} layers"
        )
        _stderr.print(f"  entry point {report.handler}   id {image['id'][:19]}…")
        if image.get("pushed"):
            _stderr.print(f"  pushed {image['pushed']}")
        return
    _stderr.print(f"\n[bold]{report.artifact}[/bold]  {report.zipped_bytes / mib:.1f} MB zipped, {report.unzipped_bytes / mib:.1f} MB unzipped")
    _stderr.print(f"  handler {report.handler}   sha256 {report.sha256[:16]}…")
    for part in report.contributors:
        _stderr.print(f"  {part['name']:<28} {part['unzipped'] / mib:7.1f} MB  ({part['zipped'] / mib:.1f} MB zipped)")


def base_image_command(
    tag: str = typer.Option("mpack/python:3.11-bookworm", "--tag", help="Reference of the image to create."),
    suite: str = typer.Option("bookworm", "--suite", help="Debian release (bookworm's python3 is 3.11)."),
    mirror: str = typer.Option("http://deb.debian.org/debian", "--mirror", help="Debian mirror debootstrap installs from."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build again even if the tag exists."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Build a Debian Python base image from Debian packages alone (debootstrap + docker import): no registry needed."""
    from mpack.packager.image.base_image import build_base_image

    with _error_boundary(False, debug):
        made = build_base_image(tag, suite, mirror, rebuild, log=lambda text: _stderr.print(f"[dim]{escape(text)}[/dim]"))
    state = "already there (use --rebuild to build again)" if made.reused else "built"
    _stderr.print(f"[bold]{made.tag}[/bold] {made.size_bytes / 2**20:.0f} MB, {state}")
    print(made.tag)
