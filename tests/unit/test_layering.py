"""DESIGN.md §2: imports run one way, packager -> infra -> handlers. handlers/ ships inside every
bundle and may import only its runtime libraries; infra/ never reaches up into the build side.
Walks every module's imports (ast), including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "handlers": ("mpack.packager", "mpack.infra"),
    "infra": ("mpack.packager",),
}
HANDLER_LIBRARIES = {"numpy", "onnxruntime", "aws_lambda_powertools", "mangum", "starlette", "uvicorn", "skops", "cloudpickle", "pandas", "mlflow", "azure"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 1:  # relative, out of its own folder
            found.append((node.lineno, "mpack.packager (relative: " + "." * node.level + (node.module or "") + ")"))
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_import_runs_against_the_layering(folder):
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, module in _imports(path)
        if module.startswith(FORBIDDEN[folder])
    ]
    assert not offences, "\n".join(offences)


def test_handlers_import_only_the_standard_library_their_runtime_libraries_and_each_other():
    import sys

    offences = []
    for path in sorted((ROOT / "handlers").rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in HANDLER_LIBRARIES or module.startswith("mpack.handlers"):
                continue
            offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offences, "\n".join(offences)


def test_the_functions_worker_needs_nothing_but_the_standard_library():
    """worker.py runs inside the app's own process, with only the app's folders on its path."""
    import sys

    worker = ROOT / "infra" / "functions_host" / "worker.py"
    outside = [f"{line}: {module}" for line, module in _imports(worker) if module.split(".")[0] not in sys.stdlib_module_names]
    assert not outside, outside
