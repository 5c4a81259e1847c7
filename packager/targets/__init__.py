"""Build targets: small recipes (entry point, runtime libraries, layout, limits) chosen by name.

Adding a target means adding a module and one line to ``TARGETS``; no other target changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mpack.infra.errors import MpackError
from mpack.packager.bundle.zip_writer import BundleEntry
from mpack.packager.image.build import ImageRecipe
from mpack.packager.targets.azure_functions import AzureFunctionsTarget
from mpack.packager.targets.container_image import ContainerImageTarget
from mpack.packager.targets.gpu_image import GpuImageTarget
from mpack.packager.targets.lambda_image import LambdaImageTarget
from mpack.packager.targets.lambda_zip import LambdaZipTarget


class Target(Protocol):
    """What every target says; zip targets (kind "zip") add entries/limits/warnings/default_output,
    image targets (kind "image") add default_base/default_tag/recipe."""

    name: str
    kind: str  # "zip" | "image"
    handler: str  # the entry point a platform calls, recorded in the manifest
    glibc_minor: int | None  # the C library runtime wheels must fit; None: Lambda's for the Python
    standard_library_bundles: bool  # whether a runtime without libraries (micro) may ship on it
    handler_modules: tuple[str, ...]  # branches only this target's bundles take at run time (its entry modules name those it needs)
    python_containers: bool  # a bundle for another Python is compiled, measured and verified in a container of it

    def recorded_options(self, options) -> dict:
        """The options of its own that shaped the bundle, with their defaults (the manifest's ``build``)."""

    def runtime_packages(self, lambda_http: str) -> str:
        """Which handler libraries it ships (a key of runtime_plan.HANDLER_PACKAGES)."""

    def entry_modules(self, standard_library: bool, lambda_http: str) -> tuple[str, ...]:
        """The handler modules its entry point imports; what they import ships with them, nothing else."""


class ZipTarget(Target, Protocol):
    def default_output(self, stem: str) -> Path: ...

    def entries(self, runtime_site: Path, files: list, modules: frozenset[str], standard_library: bool, workdir: Path, precompile) -> list[BundleEntry]:
        """Every file of the bundle, named by its path inside it: libraries, handler ``modules``, the state's ``files``."""

    def check_limits(self, entries: list[BundleEntry]) -> None:
        """Raise MpackError when the platform would refuse the bundle."""

    def warnings(self, artifact_bytes: int) -> list[str]:
        """Limits that do not stop a build but change how it deploys."""

    verified_where: str  # how the verification ran, for the build's progress line

    def verify(self, bundle: Path, request: dict, expected, tolerance: float, forbidden: tuple[str, ...]):
        """Run the finished bundle on ``request`` the way its platform runs it (a ``Verification``)."""


class ImageTarget(Target, Protocol):
    def default_base(self, python: str) -> str: ...

    def default_tag(self, model_name: str, version: str) -> str: ...

    def verify_image(self, client, image, recipe, manifest: dict, request: dict, expected, tolerance: float, progress):
        """Run the built image the way its platform runs it, on ``request`` (a ``Verification``)."""

    def recipe(self, base: str, runtime_site: Path, files: list, modules: frozenset[str], workdir: Path, precompile: bool, labels: dict) -> ImageRecipe:
        """The layers, entry point and labels of the image: libraries, handler ``modules``, the state's ``files``."""


TARGETS: dict[str, Target] = {target.name: target for target in (LambdaZipTarget(), LambdaImageTarget(), ContainerImageTarget(), GpuImageTarget(), AzureFunctionsTarget())}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise MpackError(f"unknown target {name!r}", f"available targets: {', '.join(TARGETS)}") from None


AZURE_ONLY_OPTIONS = {"auth": "--auth", "instance_memory_mb": "--instance-memory"}
HTTP_SERVER_TARGETS = ("container", "gpu")
CONTAINER_ONLY_OPTIONS = {"max_batch_size": "--max-batch-size", "max_batch_wait_ms": "--max-batch-wait-ms"}


def check_target_options(target: Target, options) -> None:
    """Options that only one target reads are refused on the others (a silently ignored flag is a
    surprise at deploy time); a target with options of its own checks them."""
    if target.name != "azure":
        given = [flag for field, flag in AZURE_ONLY_OPTIONS.items() if getattr(options, field) is not None]
        if given:
            raise MpackError(f"{', '.join(given)} only applies to --target azure", f"drop {', '.join(given)} for --target {target.name}")
    if target.name not in HTTP_SERVER_TARGETS:
        given = [flag for field, flag in CONTAINER_ONLY_OPTIONS.items() if getattr(options, field) is not None]
        if given:
            raise MpackError(f"{', '.join(given)} only applies to --target container or gpu (their HTTP server batches requests)", f"drop {', '.join(given)} for --target {target.name}")
    if target.name != "gpu" and options.require_gpu is not None:
        raise MpackError("--require-gpu only applies to --target gpu", f"drop it for --target {target.name}")
    if options.precision == "fp16" and not getattr(target, "half_precision", False):
        raise MpackError(
            f"--precision fp16 only applies to --target gpu (on --target {target.name} a CPU would convert every half-precision value back to float32: slower, not faster)",
            "use --precision auto or fp32, or build --target gpu",
        )
    check = getattr(target, "check_options", None)
    if check is not None:
        check(options)
