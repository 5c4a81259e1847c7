"""Subpackages of a runtime library that no import can reach, removed from the bundle.

numpy 2 loads ``random``, ``fft`` and ``polynomial`` lazily (on attribute access, PEP 562
``__getattr__``) and Powertools ships a dozen utilities a scoring handler never imports; together
they are about 3 MB of a zip that Lambda's cold start has to fetch and unpack. Which ones can go is
read from the code, not from a list: every ``import`` statement of the library's modules — those in
function bodies too, so a rare path that imports lazily keeps what it needs — is followed from the
modules the bundle imports; a candidate subpackage is removed only when nothing reaches it. The one
import not followed is a module's ``__getattr__``: it runs only when code names the attribute
(``numpy.random``), which the handler and onnxruntime do not do. The build's verification then runs
the bundle.
"""

from __future__ import annotations

import ast
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PrunableLibrary:
    package: str
    roots: tuple[str, ...]  # the modules the bundle imports from it (the package itself included)
    candidates: tuple[str, ...]  # dotted subpackages/modules removable when unreachable
    candidate_parents: tuple[str, ...] = ()  # and every subpackage of these, listed from the installed files


NUMPY = PrunableLibrary(
    "numpy",
    ("numpy",),
    ("numpy.random", "numpy.fft", "numpy.polynomial", "numpy.ma", "numpy.testing", "numpy.ctypeslib", "numpy._core._simd", "numpy._core._multiarray_tests"),
)
POWERTOOLS = PrunableLibrary(
    "aws_lambda_powertools",
    (
        "aws_lambda_powertools",
        "aws_lambda_powertools.logging",
        "aws_lambda_powertools.metrics",
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.utilities.data_classes",
    ),
    ("aws_lambda_powertools.event_handler",),
    ("aws_lambda_powertools.utilities",),
)


PROVIDED_BY_LAMBDA = frozenset(("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six", "jmespath", "awslambdaric", "snapshot_restore_py"))


def remove_unreachable(site: Path, libraries: tuple[PrunableLibrary, ...] = (NUMPY, POWERTOOLS)) -> list[str]:
    """Remove each library's unreachable candidates from ``site``; returns the dotted names removed."""
    removed: list[str] = []
    for library in libraries:
        if not (site / library.package).is_dir():
            continue
        reached = reachable(site, library.package, library.roots + _imports_from_outside(site, library.package))
        for name in _candidates(site, library):
            if not any(seen == name or seen.startswith(name + ".") for seen in reached):
                _remove_module(site, name)
                removed.append(name)
    return removed


def reachable(site: Path, package: str, roots: tuple[str, ...]) -> set[str]:
    """Every dotted name inside ``package`` that an import statement reaches from ``roots`` (an
    import of a module that cannot import in the bundle, see ``Importability``, reaches nothing)."""
    importable = Importability(site)
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if not importable(_deepest_module(site, name)):
            continue
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            module = ".".join(parts[:depth])
            if module in seen or not (module == package or module.startswith(package + ".")):
                continue
            seen.add(module)
            source = _source_of(site, module)
            if source is not None:
                pending.extend(imported_names(module, source))
    return seen


class Importability:
    """Whether a module of the site can import at all: not when it unconditionally (at module level,
    outside ``try``/``if``) imports a library that is neither in the site, nor in the standard
    library, nor provided by Lambda's runtime, or a module that cannot import — Powertools' OpenAPI
    and parser modules need pydantic, which a bundle never has. Computed as a fixed point over every
    module of the site, so import cycles are decided soundly."""

    def __init__(self, site: Path) -> None:
        self.site = site
        imports = {}
        for source in sorted(site.rglob("*.py")):
            module = ".".join(source.relative_to(site).with_suffix("").parts).removesuffix(".__init__")
            imports[module] = {_deepest_module(site, name) for name in _unconditional_imports(module, source)}
        self.dead = {module for module, names in imports.items() if any(self._absent(name) for name in names)}
        changed = True
        while changed:
            changed = False
            for module, names in imports.items():
                if module not in self.dead and not names.isdisjoint(self.dead):
                    self.dead.add(module)
                    changed = True

    def __call__(self, module: str) -> bool:
        return module not in self.dead and not self._absent(module)

    def _absent(self, name: str) -> bool:
        top = name.split(".")[0]
        return not (_installed(self.site, top) or top in sys.stdlib_module_names or top in PROVIDED_BY_LAMBDA or top == "__future__")


def imported_names(module: str, source: Path) -> set[str]:
    """Absolute names of every import in a module (function bodies too, ``__getattr__`` excepted)."""
    tree, package_parts = _parsed(module, source)
    names: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        for child in ast.iter_child_nodes(pending.pop()):
            if not (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.name == "__getattr__"):
                names |= _names_of(child, package_parts)
                pending.append(child)
    return names


def _unconditional_imports(module: str, source: Path) -> set[str]:
    """The imports a module runs whenever it is imported: at module level, outside try/if."""
    tree, package_parts = _parsed(module, source)
    names: set[str] = set()
    for statement in tree.body:
        names |= _names_of(statement, package_parts)
    return names


def _parsed(module: str, source: Path) -> tuple[ast.Module, list[str]]:
    try:
        tree = ast.parse(source.read_bytes())
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    return tree, module.split(".") if source.name == "__init__.py" else module.split(".")[:-1]


def _names_of(node: ast.AST, package_parts: list[str]) -> set[str]:
    """The absolute names an import statement imports (for ``from X import a``: X and X.a, which
    may be a submodule); nothing for other statements."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom):
        base = _absolute(node, package_parts)
        return {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return set()


def _absolute(statement: ast.ImportFrom, package_parts: list[str]) -> str:
    if not statement.level:
        return statement.module or ""
    return ".".join(package_parts[: len(package_parts) - statement.level + 1] + ([statement.module] if statement.module else []))


def _deepest_module(site: Path, name: str) -> str:
    """The longest prefix of a dotted name that is a module or package of the site (or the top name)."""
    parts = name.split(".")
    for depth in range(len(parts), 1, -1):
        prefix = ".".join(parts[:depth])
        if _source_of(site, prefix) is not None or any((site / Path(*parts[: depth - 1])).glob(parts[depth - 1] + ".*.so")):
            return prefix
    return parts[0]


def _installed(site: Path, top: str) -> bool:
    return (site / top).is_dir() or (site / f"{top}.py").is_file() or any(site.glob(f"{top}.*.so"))


def _imports_from_outside(site: Path, package: str) -> tuple[str, ...]:
    """What every other installed library (onnxruntime, the model's own) imports from ``package``."""
    names: set[str] = set()
    for source in sorted(site.rglob("*.py")):
        module = ".".join(source.relative_to(site).with_suffix("").parts).removesuffix(".__init__")
        if module.split(".")[0] != package:
            names.update(name for name in imported_names(module, source) if name == package or name.startswith(package + "."))
    return tuple(sorted(names))


def _candidates(site: Path, library: PrunableLibrary) -> tuple[str, ...]:
    found = list(library.candidates)
    for parent in library.candidate_parents:
        folder = site / Path(*parent.split("."))
        if folder.is_dir():
            found += [f"{parent}.{child.name}" for child in sorted(folder.iterdir()) if child.is_dir() and (child / "__init__.py").is_file()]
    return tuple(found)


def _source_of(site: Path, module: str) -> Path | None:
    base = site / Path(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _remove_module(site: Path, name: str) -> None:
    base = site / Path(*name.split("."))
    if base.is_dir():
        shutil.rmtree(base)
        return
    for file in base.parent.glob(base.name + ".*"):  # module.py, extension .so files
        if file.is_file():
            file.unlink()
