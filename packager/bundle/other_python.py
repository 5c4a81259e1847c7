"""Which Python a Lambda zip targets, and a container of it when that is not this interpreter.

Lambda zips default to the newest Python that Lambda runs and onnxruntime has wheels for
(``NEWEST_LAMBDA_PYTHON``); ``MPACK_PYTHON`` pins another for a whole CI job, ``--python`` for one
build. Other targets default to this interpreter's Python (images and Azure choose their own).

A zip for another Python than this interpreter's is precompiled, timed (``--runtime auto``'s
measurements) and verified in a container of that Python: the Debian-built image is made on first
use (debootstrap + docker import, cached by the engine), or the one given with ``--base-image``.
Where no container can run, the build stops and says why — a default build would otherwise ship
sources compiled at every cold start, unverified — unless ``--no-verify`` asks for exactly that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from mpack.infra.errors import MpackError
from mpack.packager.bundle.runtime_plan import PYTHONS, host_arch, host_python

NEWEST_LAMBDA_PYTHON = PYTHONS[-1]
PYTHON_VARIABLE = "MPACK_PYTHON"


def target_python(requested: str | None, target) -> str | None:
    """The target Python: ``--python``, else $MPACK_PYTHON, else the target's default (None: this interpreter's)."""
    return requested or os.environ.get(PYTHON_VARIABLE) or (NEWEST_LAMBDA_PYTHON if target.python_containers else None)


@dataclass(frozen=True)
class OtherPython:
    python: str
    compiler: Callable | None  # folder -> None: .pyc compiled by that Python
    timer: Callable | None  # (folder, script, args, runs) -> seconds per fresh process


def prepare_other_python(runtime, target, base_image: str | None, verify: bool, progress, warn) -> OtherPython | None:
    """None for a bundle this interpreter runs (or a target that is not a Lambda zip); else that
    Python's container helpers, or an MpackError saying what is missing and how to go on."""
    if runtime.matches_host or not target.python_containers:
        return None
    from mpack.infra.local.python_container import container_compiler, container_timer

    try:
        image = base_image or _debian_image(runtime.python, runtime.arch, progress)
        timer = container_timer(runtime.python, runtime.arch, image)  # raises, naming what is missing
        return OtherPython(runtime.python, container_compiler(runtime.python, runtime.arch, image), timer)
    except MpackError as error:
        problem = f"a Lambda zip for Python {runtime.python} on {runtime.arch} is compiled, measured and verified in a container of that Python, and none can run here: {error.message}"
        if verify:
            raise MpackError(problem, f"{error.hint}; or build for this machine with --python {host_python()} --arch {host_arch()}, or with --no-verify to ship it uncompiled and unverified") from None
        warn(f"{problem}; shipping it uncompiled (compiled at every cold start) and unverified (--no-verify)")
        return OtherPython(runtime.python, None, None)


def _debian_image(python: str, arch: str, progress) -> str | None:
    """The default image for that Python, built from Debian packages when missing (None: no Debian
    release ships it; container_image then names what to pass instead)."""
    from mpack.infra.docker_engine import connect, image_exists
    from mpack.infra.local.python_container import DEBIAN_PYTHONS, check_architecture, default_image

    suite = DEBIAN_PYTHONS.get(python)
    if suite is None:
        return None
    check_architecture(arch)
    tag = default_image(python)
    if not image_exists(connect(), tag):
        from mpack.packager.image.base_image import build_base_image

        progress.note(f"building {tag} from Debian {suite} packages, once (Python {python} for this bundle's .pyc and verification)")
        build_base_image(tag, suite=suite, log=progress.note)
    return tag
