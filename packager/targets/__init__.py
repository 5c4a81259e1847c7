"""Build targets: small recipes (entry point, runtime libraries, layout, limits) chosen by name.

Adding a target means adding a module and one line to ``TARGETS``; no other target changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..bundle import BundleEntry

from ..errors import MpackError
from .lambda_zip import LambdaZipTarget


class Target(Protocol):
    name: str
    handler: str  # the entry point a platform calls, recorded in the manifest

    def default_output(self, stem: str) -> Path: ...

    def entries(self, runtime_site: Path, model_bytes: bytes, manifest: bytes, workdir: Path, precompile: bool) -> list[BundleEntry]:
        """Every file of the bundle, named by its path inside it."""

    def check_limits(self, entries: list[BundleEntry]) -> None:
        """Raise MpackError when the platform would refuse the bundle."""

    def warnings(self, artifact_bytes: int) -> list[str]:
        """Limits that do not stop a build but change how it deploys."""


TARGETS: dict[str, Target] = {LambdaZipTarget.name: LambdaZipTarget()}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise MpackError(f"unknown target {name!r}", f"available targets: {', '.join(TARGETS)}") from None
