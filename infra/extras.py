"""Libraries outside mpack's core install, imported where they are used.

``pip install mpack-serverless`` brings what every build and deploy needs; Azure's SDKs and the
libraries that load and convert a model in this process come with extras. A command that reaches
one without its extra gets an ``MpackError`` naming the extra and the pip line, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mpack.infra.errors import MpackError

DISTRIBUTION = "mpack-serverless"
# What each extra makes importable (pyproject's [project.optional-dependencies]).
EXTRAS = {
    "azure": ("azure.storage.blob", "azure.mgmt.web", "azure.identity"),
    "local": ("sklearn", "skops.io", "skl2onnx", "onnxmltools", "pandas"),
}


def install_line(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(module: str, extra: str, why: str) -> ModuleType:
    """``module`` imported; when it (or a library it needs) is missing, the error says which extra brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        raise MpackError(f"{why} needs {missing}, which is not installed: it comes with mpack's [{extra}] extra", install_line(extra)) from None


def require_extra(extra: str, why: str) -> None:
    """Every library of ``extra``, before a path that uses several of them starts."""
    for module in EXTRAS[extra]:
        require(module, extra, why)
