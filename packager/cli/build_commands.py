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


def build(
    model: str = typer.Option(..., "--model", "-m", help="models:/NAME@ALIAS, models:/NAME/VERSION|STAGE, runs:/RUN_ID/PATH, a model folder or a .onnx file."),
    target: str = typer.Option(
        "lambda", "--target", "-t", help="What to build: lambda (zip), lambda-image, container (HTTP image), gpu (HTTP image on onnxruntime-gpu with its CUDA wheels) or azure (Functions app zip)."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the bundle [default: dist/<model>-<version>-<target>.zip]."),
    tracking_uri: Optional[str] = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking store."),
    registry_uri: Optional[str] = typer.Option(None, "--registry-uri", envvar="MLFLOW_REGISTRY_URI", help="MLflow model registry [default: the tracking store]."),
    python: Optional[str] = typer.Option(
        None,
        "--python",
        help="Target Python: 3.11, 3.12, 3.13 or 3.14 [default: $MPACK_PYTHON, else for Lambda zips the newest (3.14, compiled and verified in a container of it), for other targets this interpreter's].",
    ),
    arch: Optional[str] = typer.Option(None, "--arch", help="Target architecture: x86_64 or arm64 [default: this machine's]."),
    tolerance: Optional[float] = typer.Option(None, "--tolerance", help="Largest accepted difference between the original and the converted model [default: 1e-5; 1e-2 with --precision fp16]."),
    sample_data: Optional[Path] = typer.Option(None, "--sample-data", help="CSV or JSON rows for the parity check [default: the model's input example]."),
    lambda_http: LambdaHttp = typer.Option("direct", "--lambda-http", help="Lambda HTTP events: direct (answered by mpack's handler, fastest) or asgi (through Mangum, the same app as containers)."),
    trust_type: list[str] = typer.Option([], "--trust-type", help="A type to allow when loading a skops model file (repeatable)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Load a pickle/cloudpickle model file (runs code from it) [also: allow_pickle = true under [tool.mpack]]."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="MPACK_CACHE_DIR", help="Cache for runtime wheels [default: ~/.cache/mpack]."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Run the finished bundle (or image) on the input example before publishing it."),
    base_image: Optional[str] = typer.Option(
        None,
        "--base-image",
        help="Image targets: the base image, already on this machine [default: python:<py>-slim]; Lambda zips for another Python: the image of that Python that compiles and verifies them [default: built from Debian packages].",
    ),
    tag: Optional[str] = typer.Option(None, "--tag", help="Image targets: the image reference [default: mpack/<model>:<version>-<target>]."),
    push: bool = typer.Option(False, "--push", help="Image targets: push to the registry the tag names, after the image answered."),
    platform: Optional[str] = typer.Option(None, "--platform", help="Image targets: linux/amd64 or linux/arm64 (the same as --arch x86_64|arm64)."),
    runtime: str = typer.Option(
        "auto",
        "--runtime",
        help="onnx, micro (Lambda zips: the graph compiled to standard-library Python, no onnxruntime or numpy), native (ship scikit-learn itself; image targets) or auto (micro on Lambda zips when every operator compiles and one row answers within 1 ms; native only when ONNX cannot express the model).",
    ),
    env_manager: str = typer.Option(
        "uv", "--env-manager", help="Where the model is loaded and converted: uv (its own logged environment, cached) or local (this interpreter, after checking the logged versions)."
    ),
    auth: Optional[str] = typer.Option(None, "--auth", help="--target azure: auth level of the scoring routes: function (a key), anonymous or admin [default: function]."),
    instance_memory: Optional[int] = typer.Option(None, "--instance-memory", help="--target azure: Flex Consumption instance memory the app must fit: 512, 2048 or 4096 MB [default: 2048]."),
    max_batch_size: Optional[int] = typer.Option(
        None, "--max-batch-size", help="--target container|gpu: coalesce concurrent requests into model runs of up to this many rows (0: off) [default: 0, gpu 64; MPACK_MAX_BATCH_SIZE at run time]."
    ),
    max_batch_wait_ms: Optional[float] = typer.Option(
        None, "--max-batch-wait-ms", help="--target container|gpu: under load, wait up to this long for more rows before a run (a lone request never waits) [default: 2]."
    ),
    require_gpu: Optional[bool] = typer.Option(
        None, "--require-gpu/--no-require-gpu", help="--target gpu: report not ready, naming the missing CUDA part, rather than serve from the CPU [default: on; MPACK_REQUIRE_GPU at run time]."
    ),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help="auto (a graph computing in float64 ships as float32 when that passes the parity gate and is faster, measured), fp64, fp32, or fp16 (--target gpu: half precision, checked at its own tolerance).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one machine-readable build report on stdout."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Build a deployable bundle from a model."""
    from mpack.packager.pipeline import BuildOptions
    from mpack.packager.pipeline import build as run_build
    from mpack.packager.progress import RichProgress

    if platform is not None:
        with _error_boundary(as_json, debug):
            arch = _arch_of_platform(platform, arch)

    options = BuildOptions(
        model=model,
        target=target,
        output=output,
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        python=python,
        arch=arch,
        tolerance=tolerance,
        sample_data=sample_data,
        lambda_http=lambda_http,
        trusted_types=tuple(trust_type),
        allow_pickle=allow_pickle,
        cache_dir=cache_dir,
        verify=verify,
        base_image=base_image,
        tag=tag,
        push=push,
        runtime=runtime,
        env_manager=env_manager,
        auth=auth,
        instance_memory_mb=instance_memory,
        max_batch_size=max_batch_size,
        max_batch_wait_ms=max_batch_wait_ms,
        require_gpu=require_gpu,
        precision=precision,
    )
    with _error_boundary(as_json, debug):
        if not allow_pickle:
            from mpack.packager.cli.build_settings import allow_pickle_setting

            options = replace(options, allow_pickle=allow_pickle_setting(Path.cwd()))
        report = run_build(options, RichProgress(_stderr))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_summary(report)


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
