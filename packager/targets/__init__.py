"""Build targets: small recipes (entry point, runtime libraries, layout, limits) chosen by name.

Adding a target means adding a module and one line to ``TARGETS``; no other target changes.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import MpackError
from .lambda_zip import LambdaZipTarget


class Target(Protocol):
    name: str
    handler: str

    def default_output(self, stem: str): ...

    def entries(self, runtime_site, model_bytes: bytes, manifest: bytes, workdir) -> list: ...

    def check_limits(self, entries: list) -> list[str]: ...


TARGETS: dict[str, Target] = {LambdaZipTarget.name: LambdaZipTarget()}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise MpackError(f"unknown target {name!r}", f"available targets: {', '.join(TARGETS)}") from None
