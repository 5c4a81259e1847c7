"""What `pip install mpack-serverless` installs: every package folder (a non-editable install once
missed two), a core that imports no extra at module level, and extras that say how to get them."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest
from mpack.infra.errors import MpackError
from mpack.infra.extras import EXTRAS, require

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
WINGS = {"packager": "mpack.packager", "handlers": "mpack.handlers", "infra": "mpack.infra", "templates": "mpack.templates"}
# Modules the core install provides (pyproject's dependencies and what they bring); anything else is
# imported inside the function that needs it, through mpack.infra.extras.require or the model's environment.
CORE_MODULES = {"typer", "rich", "click", "mlflow", "sqlalchemy", "alembic", "uv", "onnx", "onnxruntime", "numpy", "aws_lambda_powertools", "mangum", "starlette", "uvicorn"}
CORE_MODULES |= {"boto3", "botocore", "docker", "awslambdaric", "yaml", "packaging", "requests", "cloudpickle"}


def test_every_package_folder_is_installed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {WINGS[init.relative_to(ROOT).parts[0]] + "".join(f".{part}" for part in init.parent.relative_to(ROOT).parts[1:]) for wing in WINGS for init in (ROOT / wing).rglob("__init__.py")}
    assert folders - listed == set(), "package folders missing from pyproject's [tool.setuptools] packages"
    assert listed - folders == set(), "pyproject lists packages that have no folder"


def test_the_test_extra_holds_every_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(EXTRAS) | {"all", "test"} == set(extras)
    assert f"mpack-serverless[{','.join(sorted(EXTRAS))}]" in extras["all"]
    assert "mpack-serverless[all]" in extras["test"]


def _module_level_imports(path: Path):
    """Imports run when the module is imported: its body, not its functions'."""
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


@pytest.mark.parametrize("wing", ["packager", "infra"])
def test_the_build_and_deploy_side_imports_only_the_core_at_module_level(wing):
    """handlers/ ships inside bundles with its own runtime libraries; it is checked elsewhere."""
    allowed = CORE_MODULES | set(sys.stdlib_module_names) | {"mpack", "__future__"}
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / wing).rglob("*.py"))
        for line, module in _module_level_imports(path)
        if module.split(".")[0] not in allowed and module != "azure.functions"
    ]
    assert not offences, "\n".join(offences)


def test_azure_sdk_is_reached_only_through_require():
    """Every Azure SDK module is an extra's: a plain import would fail with a traceback on the core."""
    offences = []
    for path in sorted([*(ROOT / "packager").rglob("*.py"), *(ROOT / "infra").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            offences += [f"{path.relative_to(ROOT)}:{node.lineno} imports {name}" for name in names if name.startswith("azure.") and name != "azure.functions"]
    assert not offences, "\n".join(offences)


def test_a_missing_extra_names_itself_and_the_pip_line():
    with pytest.raises(MpackError) as caught:
        require("mpack_no_such_module.sub", "azure", "talking to Azure")
    assert caught.value.message == "talking to Azure needs mpack_no_such_module, which is not installed: it comes with mpack's [azure] extra"
    assert caught.value.hint == "pip install 'mpack-serverless[azure]'"


def test_a_present_module_is_returned():
    assert require("json", "local", "anything").dumps([]) == "[]"
