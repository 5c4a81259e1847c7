"""What every bundle and image carries besides its libraries: the ``mpack`` package with exactly the
handler modules its entry point imports, and the model folder (the state's files)."""

from __future__ import annotations

import ast
import importlib
import shutil
from functools import cache
from pathlib import Path

from mpack.packager.bundle.dependencies import compile_tree


def package_dir(module_name: str) -> Path:
    return Path(importlib.import_module(module_name).__file__).resolve().parent


@cache
def _imports_of(module: str) -> tuple[tuple[str, bool], ...]:
    """(handler module, imported at the top level) for every handler module ``module`` imports."""
    tree = ast.parse((package_dir("mpack.handlers") / f"{module}.py").read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names = [node.module.split(".")[0]]
            elif node.level == 1:
                names = [alias.name for alias in node.names]
            elif node.module and node.module.startswith("mpack.handlers."):
                names = [node.module.split(".")[2]]
            elif node.module == "mpack.handlers":
                names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".")[2] for alias in node.names if alias.name.startswith("mpack.handlers.")]
        found += [(name, id(node) in top) for name in names]
    return tuple(found)


def handler_modules(roots: tuple[str, ...], optional: frozenset[str] = frozenset()) -> frozenset[str]:
    """The handler modules reached from ``roots`` through their imports, top-level and deferred;
    a deferred import of a module in ``optional`` (another runtime's or target's, chosen at run
    time from the manifest) is not followed: this bundle never takes that branch."""
    available = {path.stem for path in package_dir("mpack.handlers").glob("*.py")}
    reached, pending = set(), list(roots)
    while pending:
        module = pending.pop()
        if module in reached:
            continue
        if module not in available:
            raise ValueError(f"no handler module {module!r}")  # a target's or runtime's mistake, not a user's
        reached.add(module)
        pending += [name for name, at_top in _imports_of(module) if name in available and (at_top or name not in optional)]
    return frozenset(reached | {"__init__"})


def handler_code(folder: Path, modules: frozenset[str], precompile: bool) -> Path:
    """``folder/mpack/handlers`` holding ``modules`` (precompiled to unchecked-hash .pyc when this
    interpreter matches the target)."""
    shutil.rmtree(folder, ignore_errors=True)
    handlers = folder / "mpack" / "handlers"
    handlers.mkdir(parents=True)
    for source in sorted(package_dir("mpack.handlers").glob("*.py")):
        if source.stem in modules:
            shutil.copyfile(source, handlers / source.name)
    (folder / "mpack" / "__init__.py").write_bytes(b"")
    if precompile:
        compile_tree(folder)
    return folder


def precompile(folder: Path, how) -> None:
    """``how``: True (this interpreter is the bundle's), another Python's compiler
    (infra/local/python_container.container_compiler), or False (shipped as sources)."""
    if callable(how):
        how(folder)
    elif how:
        compile_tree(folder)


def model_folder(folder: Path, files) -> Path:
    """The state's files (the model file, mpack.json, what later stages add) as one folder."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for file in files:
        (folder / file.name).write_bytes(file.data)
    return folder
