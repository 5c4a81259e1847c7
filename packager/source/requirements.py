"""What a logged model says it was trained with: its pinned requirements (requirements.txt), its
Python (python_env.yaml, or MLmodel's python_version) and the version of its framework.

MLflow writes these next to every model; mpack rebuilds the model's environment from them (uv), or
checks them against this machine (``--env-manager local``) before trusting a load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

NEVER_SHIPPED = ("mlflow", "mlflow-skinny")
# The package that unpickles/loads each flavor, and the MLmodel key MLflow records its version under.
FRAMEWORKS = {
    "sklearn": ("scikit-learn", "sklearn_version"),
    "xgboost": ("xgboost", "xgb_version"),
    "lightgbm": ("lightgbm", "lgb_version"),
    "catboost": ("catboost", "cb_version"),
    "pytorch": ("torch", "pytorch_version"),
    "tensorflow": ("tensorflow", "tensorflow_version"),
    "keras": ("keras", "keras_version"),
}
PYFUNC_FRAMEWORK = "mlflow-skinny"  # MLflow without its server and UI: what a custom pyfunc loads with
_NAME = re.compile(r"[<>=!~;\[ @]")


def package_name(requirement: str) -> str:
    """The normalized project name of a requirement line (``Scikit_Learn==1.5`` -> ``scikit-learn``)."""
    return _NAME.split(requirement.strip(), 1)[0].lower().replace("_", "-").replace(".", "-")


def pinned_version(requirements: list[str], name: str) -> str | None:
    """The ``==`` version a requirement list pins ``name`` to (local labels such as +cpu kept)."""
    for line in requirements:
        if package_name(line) == name:
            match = re.search(r"===?\s*([^\s;,]+)", line)
            return match.group(1) if match else None
    return None


@dataclass(frozen=True)
class LoggedEnvironment:
    requirements: tuple[str, ...]  # requirements.txt without MLflow, comments and options
    python: str | None  # "3.11", the minor version the model was logged with
    framework: str | None  # the package that loads the flavor, e.g. scikit-learn
    framework_version: str | None  # as pinned in requirements.txt, else as MLmodel records it
    flavor: str | None = None  # the flavor mpack converts from, e.g. sklearn

    def describe(self) -> str:
        python = f"Python {self.python}" if self.python else "Python (not recorded)"
        framework = f"{self.framework}=={self.framework_version}" if self.framework and self.framework_version else ""
        return ", ".join(part for part in (python, framework) if part)


def logged_environment(model_dir: Path, flavors: dict, mlflow_version: str | None = None) -> LoggedEnvironment:
    requirements = tuple(requirement_lines(model_dir / "requirements.txt"))
    framework, version, found = None, None, None
    for flavor, (package, key) in FRAMEWORKS.items():
        if flavor in flavors:
            framework, found = package, flavor
            version = pinned_version(list(requirements), package) or _plain(flavors[flavor].get(key))
            break
    else:
        if "python_function" in flavors:  # a custom pyfunc: loading it takes MLflow's pyfunc modules
            framework, version, found = PYFUNC_FRAMEWORK, mlflow_version, "python_function"
    return LoggedEnvironment(requirements, logged_python(model_dir, flavors), framework, version, found)


def requirement_lines(path: Path) -> list[str]:
    """requirements.txt as MLflow logged it, without MLflow itself (only the model's own libraries)."""
    lines = path.read_text().splitlines() if path.is_file() else []
    wanted = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and package_name(line) not in NEVER_SHIPPED:
            wanted.append(line)
    return wanted


def logged_python(model_dir: Path, flavors: dict) -> str | None:
    """``3.11`` from python_env.yaml (``python: 3.11.7``), else from MLmodel's pyfunc flavor."""
    version = None
    env_file = model_dir / "python_env.yaml"
    if env_file.is_file():
        try:
            document = yaml.safe_load(env_file.read_text()) or {}
            version = document.get("python") if isinstance(document, dict) else None
        except yaml.YAMLError:
            version = None
    if not version:
        version = (flavors.get("python_function") or {}).get("python_version")
    match = re.match(r"\s*(\d+)\.(\d+)", str(version or ""))
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _plain(value) -> str | None:
    return str(value) if value not in (None, "") else None
