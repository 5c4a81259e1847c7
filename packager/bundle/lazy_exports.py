"""Package ``__init__`` files that only re-export names from submodules, made lazy (PEP 562).

werkzeug's ``__init__`` is four lines — ``run_simple``, ``Client``, ``Request``, ``Response`` —
and importing it imports its development server (``http.server``, ``http.client``, ``ssl``) and
test client: about 35 ms on this machine, spent at every cold start of an Azure Functions app,
because ``azure.functions`` imports ``werkzeug.datastructures`` and ``werkzeug.http`` (not these
four). The rewritten ``__init__`` resolves each name from its submodule on first access, then
keeps it, so ``werkzeug.Request`` and ``from werkzeug import Response`` work as before; only the
import of the unused submodules moves from ``import werkzeug`` to the first use.

Only packages named in ``LAZY_PACKAGES`` are rewritten — their submodules were read and have no
import-time side effect anything relies on — and only while their ``__init__`` has exactly the
reviewed shape (docstring and ``from .module import name`` lines, nothing else); a future version
with any other statement is shipped as it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAZY_PACKAGES = ("werkzeug",)

LAZY_INIT = """{docstring}import importlib as _importlib

_EXPORTS = {exports!r}  # name -> submodule; rewritten by mpack (packager/bundle/lazy_exports.py): resolved on first use
__all__ = {names!r}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    try:  # a submodule, as eager imports used to leave it bound on the package
        return _importlib.import_module("." + name, __name__)
    except ModuleNotFoundError as missing:
        if missing.name != __name__ + "." + name:
            raise
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
"""


def make_exports_lazy(site: Path, packages: tuple[str, ...] = LAZY_PACKAGES) -> list[str]:
    """Rewrite each named package's re-exporting ``__init__.py`` under ``site``; returns the packages rewritten."""
    rewritten = []
    for package in packages:
        init = site / package / "__init__.py"
        if not init.is_file():
            continue
        source = init.read_text(encoding="utf-8")
        shape = reexports(source)
        if shape is None:
            continue
        docstring, exports = shape
        header = f"{docstring!r}\n\n" if docstring else ""
        init.write_text(LAZY_INIT.format(docstring=header, exports=exports, names=list(exports)), encoding="utf-8")
        rewritten.append(package)
    return rewritten


def reexports(source: str) -> tuple[str | None, dict[str, str]] | None:
    """(docstring, {name: ".submodule"}) when the module holds only a docstring and
    ``from .submodule import name [as name]`` statements; None for anything else."""
    tree = ast.parse(source)
    body = list(tree.body)
    docstring = ast.get_docstring(tree, clean=False)
    if docstring is not None:
        body = body[1:]
    exports: dict[str, str] = {}
    for statement in body:
        if not (isinstance(statement, ast.ImportFrom) and statement.level == 1 and statement.module):
            return None
        for alias in statement.names:
            if alias.name == "*" or (alias.asname not in (None, alias.name)):
                return None
            exports[alias.name] = "." + statement.module
    return (docstring, exports) if exports else None
