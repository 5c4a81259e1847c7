"""What every bundle and image carries besides its libraries: the ``mpack`` package with the handler
modules its target imports, and the model folder (the model file and mpack.json)."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

from mpack.packager.bundle.dependencies import compile_tree
from mpack.packager.bundle.manifest import MANIFEST_NAME


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


def model_folder(folder: Path, model_bytes: bytes, manifest: bytes) -> Path:
    """The model file the manifest names (model.onnx, or a native model's own file) and mpack.json."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / json.loads(manifest)["model"]["file"]).write_bytes(model_bytes)
    (folder / MANIFEST_NAME).write_bytes(manifest)
    return folder
