"""The emulated Lambda runtime folder (Lambda's /var/runtime): AWS's runtime interface client and a
bootstrap, kept beside the bundle, never inside it.

The client's files are copied from this environment's installed distributions (no network, same
versions the tests ran), once per version set, into the cache. The bootstrap gives the function
Lambda's import order (task root first, then the runtime folder, then the standard library: no
site-packages, so a module missing from the bundle fails here as it would on Lambda).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from mpack.infra.errors import MpackError

RUNTIME_DISTRIBUTIONS = ("awslambdaric", "simplejson", "snapshot-restore-py")
BOOTSTRAP_NAME = "bootstrap.py"
_BOOTSTRAP = '''"""Lambda's Python bootstrap, as mpack's local platform runs it."""
import os
import sys

sys.path[:0] = [os.environ["LAMBDA_TASK_ROOT"], os.environ["LAMBDA_RUNTIME_DIR"]]
os.chdir(os.environ["LAMBDA_TASK_ROOT"])
from awslambdaric.__main__ import main

main([sys.argv[0], os.environ["_HANDLER"]])
'''


def runtime_dir(cache_root: Path) -> Path:
    """The runtime folder for this interpreter, prepared once and reused."""
    try:
        versions = [f"{name}-{metadata.version(name)}" for name in RUNTIME_DISTRIBUTIONS]
    except metadata.PackageNotFoundError as missing:
        raise MpackError(
            f"the AWS runtime interface client is not installed ({missing.name} is missing)", "reinstall mpack: pip install mpack-serverless (or bash scripts/setup.sh in its repository)"
        ) from None
    folder = cache_root / "lambda-runtime" / "-".join([f"cp{sys.version_info[0]}{sys.version_info[1]}", *versions])

    def copy_installed(partial: Path) -> None:
        for name in RUNTIME_DISTRIBUTIONS:
            _copy_distribution(name, partial)

    return _prepared(folder, copy_installed)


def _prepared(folder: Path, fill) -> Path:
    """``folder``, made once: ``fill(partial)`` writes the client beside it, the bootstrap is added,
    and the whole is renamed into place (a half-made folder is never used)."""
    if (folder / BOOTSTRAP_NAME).exists():
        return folder
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        fill(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / BOOTSTRAP_NAME).write_text(_BOOTSTRAP)
    try:
        partial.rename(folder)
    except OSError:  # another process prepared it first
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _copy_distribution(name: str, target: Path) -> None:
    for entry in metadata.distribution(name).files or ():
        parts = entry.parts
        if parts[0] == ".." or "__pycache__" in parts or parts[0].endswith(".dist-info"):
            continue
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry.locate(), destination)


def runtime_dir_for(python: str, arch: str, cache_root: Path) -> Path:
    """The runtime folder for a Lambda Python other than this interpreter's (run in a container of
    it): the same client versions, installed from their wheels for that Python and architecture."""
    versions = [f"{name}=={metadata.version(name)}" for name in RUNTIME_DISTRIBUTIONS]
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
    folder = cache_root / "lambda-runtime" / "-".join([f"cp{python.replace('.', '')}-{machine}", *(v.replace("==", "-") for v in versions)])

    def install_wheels(partial: Path) -> None:
        command = [sys.executable, "-m", "pip", "install", "--target", str(partial), "--only-binary=:all:", "--implementation", "cp", "--python-version", python]
        command += ["--platform", f"manylinux_2_28_{machine}", "--platform", f"manylinux2014_{machine}", "--no-compile", "--quiet", "--disable-pip-version-check", *versions]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise MpackError(f"cannot install the runtime interface client for Python {python} on {arch}: {detail}", "check the network to the package index (or PIP_INDEX_URL)")

    return _prepared(folder, install_wheels)
