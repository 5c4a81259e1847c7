"""Runtime dependencies as manylinux wheels for the target, without Docker, cached on disk.

pip does the resolving (``--platform/--python-version/--implementation/--only-binary=:all:
--target``). onnxruntime is installed without its dependencies: they (sympy, protobuf, coloredlogs,
flatbuffers) serve its build-time tools, not inference. Subpackages no import reaches are removed
(bundle/unreachable.py), re-exporting package ``__init__``s that import what the app never uses
are made lazy (bundle/lazy_exports.py), and precompiled onnxruntime-runtime libraries ship without their sources. The stripped, precompiled result is
cached under a key of (requirements, python, arch, glibc, pyc), so a second build installs nothing.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from py_compile import PycInvalidationMode

from mpack.infra.errors import MpackError
from mpack.packager.bundle.lazy_exports import make_exports_lazy
from mpack.packager.bundle.runtime_plan import RuntimePlan
from mpack.packager.bundle.strip import drop_sources, strip_site
from mpack.packager.bundle.unreachable import NUMPY, POWERTOOLS, remove_unreachable

CACHE_LAYOUT_VERSION = 4  # bump when stripping or compiling changes what a cache entry holds
COMPLETE_MARKER = ".mpack-complete"


@dataclass(frozen=True)
class InstalledRuntime:
    site: Path  # the folder whose contents go to the bundle root
    cache_hit: bool
    key: str
    precompiled: bool


def default_cache_dir() -> Path:
    if os.environ.get("MPACK_CACHE_DIR"):
        return Path(os.environ["MPACK_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpack"


def cache_key(plan: RuntimePlan, precompile: bool) -> str:
    material = {
        "onnxruntime": plan.onnxruntime,
        "numpy": plan.numpy,
        "packages": sorted(plan.handler_packages),
        "model_packages": sorted(plan.model_packages),
        "python": plan.python,
        "cuda": plan.cuda,
        "arch": plan.arch,
        "glibc": plan.glibc,
        "pyc": precompile,
        "layout": CACHE_LAYOUT_VERSION,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


def install_runtime(plan: RuntimePlan, cache_dir: Path, log=lambda text: None, compiler=None) -> InstalledRuntime:
    """``compiler``: precompiles a folder with the target's Python when it is not this interpreter
    (in a container of it); without one, a foreign target's files stay uncompiled."""
    precompile = plan.matches_host or compiler is not None
    key = cache_key(plan, precompile)
    entry = cache_dir / "runtime" / key
    if (entry / COMPLETE_MARKER).is_file():
        return InstalledRuntime(entry / "site", True, key, precompile)
    staging = cache_dir / "runtime" / f".{key}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        site = staging / "site"
        if plan.model_packages:  # --runtime native: the model's own libraries, numpy pinned among them
            requirements = [*plan.model_packages, *plan.handler_packages]
        else:
            package = "onnxruntime-gpu" if plan.cuda else "onnxruntime"
            log(f"installing {package}=={plan.onnxruntime} for Python {plan.python} {plan.arch} (glibc {plan.glibc})")
            _pip_install(plan, site, [f"{package}=={plan.onnxruntime}"], with_dependencies=False)
            requirements = [f"numpy=={plan.numpy}", *plan.handler_packages, *(cuda_requirements(site, package) if plan.cuda else ())]
        log("installing " + ", ".join(requirements))
        _pip_install(plan, site, requirements, with_dependencies=True)
        strip_site(site, native=bool(plan.model_packages))
        remove_unreachable(site, (POWERTOOLS,) if plan.model_packages else (NUMPY, POWERTOOLS))  # the model's own libraries use all of numpy
        make_exports_lazy(site)
        if precompile:
            (compiler or compile_tree)(site)
            if not plan.model_packages:  # the model's own libraries may read their sources (torch.jit, inspect)
                drop_sources(site)
        (staging / COMPLETE_MARKER).write_text(json.dumps(plan.describe()))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return InstalledRuntime(entry / "site", False, key, precompile)


def _pip_install(plan: RuntimePlan, target: Path, requirements: list[str], with_dependencies: bool) -> None:
    command = [sys.executable, "-m", "pip", "install", "--target", str(target), "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", plan.python, "--no-compile", "--disable-pip-version-check", "--no-input", "--quiet", "--upgrade"]
    for tag in plan.platforms:
        command += ["--platform", tag]
    if not with_dependencies:
        command.append("--no-deps")
    result = subprocess.run(command + requirements, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        if plan.model_packages and "No matching distribution" in detail:
            raise MpackError(
                f"the model's pinned libraries have no wheel for Python {plan.python} on {plan.arch} with glibc {plan.glibc} (Lambda's runtime for it): {detail}",
                "a native bundle ships the model's own pins; today's numpy/pandas/scikit-learn need glibc 2.28+, so either log the model with older pins "
                "(e.g. numpy<2.3, pandas<2.3, scikit-learn<1.6) or log it under Python 3.12+ and build with --python 3.12; images have no such limit (--target lambda-image)",
            )
        raise MpackError(
            f"cannot install {', '.join(requirements)} for Python {plan.python} on {plan.arch} (glibc {plan.glibc}): {detail}",
            "check the network to the package index (or PIP_INDEX_URL), or choose another --python/--arch",
        )


def cuda_requirements(site: Path, package: str) -> list[str]:
    """The NVIDIA CUDA/cuDNN runtime wheels onnxruntime-gpu names in its [cuda,cudnn] extras — exactly
    those, for its own CUDA major (its other dependencies serve its build-time tools, as for the CPU package)."""
    from email.parser import Parser

    found = sorted(site.glob(f"{package.replace('-', '_')}-*.dist-info/METADATA"))
    if not found:
        raise MpackError(f"{package} installed no metadata in {site}", "remove the runtime cache (--cache-dir) and build again")
    metadata = Parser().parsestr(found[0].read_text())
    wanted = []
    for requirement in metadata.get_all("Requires-Dist") or ():
        name, _, marker = requirement.partition(";")
        if any(f'extra == "{extra}"' in marker.replace("'", '"') for extra in ("cuda", "cudnn")):
            wanted.append(name.strip())
    if not wanted:
        raise MpackError(f"{package} declares no [cuda,cudnn] extras", "use onnxruntime-gpu 1.19 or newer, whose wheels name their CUDA and cuDNN wheels")
    return wanted


def compile_tree(folder: Path) -> None:
    """Unchecked-hash .pyc beside every module: Lambda's code folder is read-only, and nothing is
    compiled or stat-checked at cold start. Paths are recorded relative, so bytes are reproducible."""
    ok = compileall.compile_dir(
        str(folder),
        quiet=2,
        stripdir=str(folder),
        invalidation_mode=PycInvalidationMode.UNCHECKED_HASH,
        workers=1,
    )
    if not ok:
        raise MpackError(f"cannot precompile the bundle's Python files in {folder}", "a file in a runtime package is not valid Python for this interpreter")
