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
HANDLER_LIBRARIES.add("_sha2")  # Python 3.12+ built-in SHA-2 (the loader falls back to 3.11's _sha256, then hashlib)
HANDLER_LIBRARIES.add("snapshot_restore_py")  # SnapStart hooks: Lambda's runtime provides it (imported only under snap-start)


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
    offences = [f"{path.relative_to(ROOT)}:{line} imports {module}" for path in sorted((ROOT / folder).rglob("*.py")) for line, module in _imports(path) if module.startswith(FORBIDDEN[folder])]
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


def test_micro_runtime_modules_import_only_the_standard_library():
    """A --runtime micro Lambda zip ships exactly the handler modules its entry point reaches: each
    of them may import at module level only the standard library and other shipped modules (lazy
    imports inside functions serve other runtimes' paths; the build's verification run proves the rest)."""
    import sys

    from mpack.packager.runtimes import RUNTIMES
    from mpack.packager.stages.package import handler_modules_of
    from mpack.packager.targets import get_target

    shipped_names = handler_modules_of(get_target("lambda"), RUNTIMES["micro"], "direct")
    assert shipped_names >= {"micro_lambda", "micro_runtime", "micro_kernels", "row_feeds", "protocol", "loader"}
    assert not shipped_names & {"lambda_function", "native_model", "gpu_session", "batching", "container_app", "azure_function", "open_inference"}
    for path in [ROOT / "handlers" / f"{name}.py" for name in shipped_names]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                for module in [node.module] if node.module else [a.name for a in node.names]:
                    assert module in shipped_names, f"{path.name} imports .{module}, which a micro bundle does not ship"
                continue
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                assert name.split(".")[0] in sys.stdlib_module_names | {"_sha2"}, f"{path.name} imports {name}, outside the standard library"



def test_the_functions_worker_needs_nothing_but_the_standard_library():
    """worker.py runs inside the app's own process, with only the app's folders on its path."""
    import sys

    worker = ROOT / "infra" / "functions_host" / "worker.py"
    outside = [f"{line}: {module}" for line, module in _imports(worker) if module.split(".")[0] not in sys.stdlib_module_names]
    assert not outside, outside
