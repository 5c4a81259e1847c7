"""The ``mpack`` package a bundle or image carries: the handler modules its target imports."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from ..dependencies import compile_tree


def package_dir(module_name: str) -> Path:
    return Path(importlib.import_module(module_name).__file__).resolve().parent


def handler_code(folder: Path, exclude: tuple[str, ...], precompile: bool) -> Path:
    """``folder/mpack/handlers`` without the modules named by ``exclude`` prefixes (precompiled
    to unchecked-hash .pyc when this interpreter matches the target)."""
    shutil.rmtree(folder, ignore_errors=True)
    handlers = folder / "mpack" / "handlers"
    handlers.mkdir(parents=True)
    for source in sorted(package_dir("mpack.handlers").glob("*.py")):
        if not source.name.startswith(exclude):
            shutil.copyfile(source, handlers / source.name)
    (folder / "mpack" / "__init__.py").write_bytes(b"")
    if precompile:
        compile_tree(folder)
    return folder
