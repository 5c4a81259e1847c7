"""The model's own environment: where it is loaded, converted and asked for reference predictions.

A model pickled under scikit-learn 1.5 and unpickled under 1.9 may load and answer differently, and a
parity gate that compares against such a misloaded model passes silently. So, as MLflow's
``--env-manager`` does, mpack rebuilds the environment the model was logged with:

- ``uv`` (default): a virtual environment from the model's requirements.txt (without MLflow) plus
  mpack's converters, for an interpreter of the logged Python minor version found on this machine.
  Cached by (Python, requirement set): a rebuild of the same model, or of another model trained with
  the same libraries, reuses it. uv honours its own settings (UV_INDEX_URL, UV_FIND_LINKS, ...), which
  is how a private index or a CPU-only PyTorch index is named.
- ``local``: this interpreter, after checking that the logged Python and framework versions are
  the ones installed here; a mismatch stops the build and names both versions and the fix.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.infra.extras import require_extra
from mpack.packager.source.requirements import PYFUNC_FRAMEWORK, LoggedEnvironment, package_name

ENV_MANAGERS = ("uv", "local")
ENV_LAYOUT_VERSION = 2  # 2: bytecode compiled at install
# Installed beside the model's own libraries, at this machine's versions when they resolve together.
CONVERTERS = ("skl2onnx", "onnx", "onnxruntime", "onnxmltools", "pyyaml", "cloudpickle", "skops", "pandas", "numpy")
NOT_PINNED = ("pandas", "numpy")  # only the model's own pins: they follow its framework
FLAVOR_CONVERTERS = {"pytorch": ("onnxscript",), "tensorflow": ("tf2onnx",), "keras": ("tf2onnx",)}  # exporters the flavor needs
# Distributions that provide a framework under another name (the local check accepts either).
SAME_FRAMEWORK = {"tensorflow": ("tensorflow-cpu",), "xgboost": ("xgboost-cpu",), PYFUNC_FRAMEWORK: ("mlflow",)}
# PyPI's torch wheels bring gigabytes of CUDA libraries a build never uses; PyTorch's own CPU index has
# the same releases without them. Used only when the user names no uv sources of their own.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
UV_SOURCES = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")
INSTALL_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ModelEnvironment:
    python: Path  # the interpreter that loads the model
    manager: str  # uv | local
    key: str
    cache_hit: bool
    packages: tuple[str, ...]  # what was asked for (uv), for the build report

    @property
    def isolated(self) -> bool:
        return self.manager != "local"


def check_env_manager(name: str) -> str:
    if name not in ENV_MANAGERS:
        raise MpackError(f"--env-manager {name} is not an environment manager", f"choose one of {', '.join(ENV_MANAGERS)}")
    return name


def local_environment(logged: LoggedEnvironment) -> ModelEnvironment:
    """This interpreter, if it has mpack's [local] extra (the converters) and the Python and
    framework the model was logged with."""
    require_extra("local", "--env-manager local (loading and converting the model in this process)")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if logged.python and logged.python != here:
        raise MpackError(
            f"the model was logged with Python {logged.python} and --env-manager local runs Python {here}",
            f"drop --env-manager local (mpack then builds the model's environment with uv from an installed Python {logged.python}), or run mpack under Python {logged.python}",
        )
    if logged.framework and logged.framework_version:
        installed = next((v for v in map(installed_version, (logged.framework, *SAME_FRAMEWORK.get(logged.framework, ()))) if v), None)
        if not same_release(installed, logged.framework_version):
            have = f"{logged.framework} {installed}" if installed else f"no {logged.framework}"
            raise MpackError(
                f"the model was logged with {logged.framework}=={logged.framework_version} and this environment has {have}: "
                "loading it here may change its predictions, and the parity gate would compare against the misloaded model",
                f"drop --env-manager local to convert it in its own environment (uv), or install the logged version: pip install '{logged.framework}=={logged.framework_version}'",
            )
    return ModelEnvironment(Path(sys.executable), "local", "local", True, ())


def same_release(installed: str | None, logged: str) -> bool:
    """2.13.0+cpu is the 2.13.0 MLflow logged (it drops local labels such as +cpu)."""
    from packaging.version import InvalidVersion, Version

    if installed is None:
        return False
    try:
        ours, theirs = Version(installed), Version(logged)
    except InvalidVersion:
        return installed == logged
    return ours == theirs or (not theirs.local and ours.public == theirs.public)


def installed_version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def uv_environment(logged: LoggedEnvironment, cache_dir: Path, log=lambda text: None, warn=lambda text: None) -> ModelEnvironment:
    """The model's logged requirements plus the converters in a cached virtual environment."""
    interpreter = find_python(logged.python)
    minor = logged.python or f"{sys.version_info.major}.{sys.version_info.minor}"
    wanted = environment_requirements(logged)
    key = hashlib.sha256(json.dumps({"python": minor, "requirements": wanted, "layout": ENV_LAYOUT_VERSION}).encode()).hexdigest()[:20]
    root = cache_dir / "envs"
    folder = root / f"py{minor}-{key}"
    python = folder / "bin" / "python"
    if (folder / ".complete").is_file():
        return ModelEnvironment(python, "uv", key, True, tuple(wanted))
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"py{minor}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two builds of the same model share one environment
        if (folder / ".complete").is_file():
            return ModelEnvironment(python, "uv", key, True, tuple(wanted))
        log(f"creating the model's environment (Python {minor}: {', '.join(logged.requirements) or 'no logged requirements'})")
        shutil.rmtree(folder, ignore_errors=True)
        try:
            _create(interpreter, folder, wanted, logged, warn)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / ".complete").write_text(json.dumps({"python": minor, "requirements": wanted}))
    return ModelEnvironment(python, "uv", key, False, tuple(wanted))


def environment_requirements(logged: LoggedEnvironment) -> list[str]:
    """The model's pins, then each converter the model does not pin itself (at this machine's version)."""
    named = {package_name(r) for r in logged.requirements}
    wanted = list(logged.requirements)
    if logged.framework and logged.framework not in named:
        wanted.append(f"{logged.framework}=={logged.framework_version}" if logged.framework_version else logged.framework)
    for package in CONVERTERS + FLAVOR_CONVERTERS.get(logged.flavor, ()):
        if package not in named:
            here = installed_version(package)
            wanted.append(f"{package}=={here}" if here and package not in NOT_PINNED else package)
    return sorted(wanted, key=str.lower)


def find_python(minor: str | None) -> Path:
    """An interpreter of the logged minor version: this one, else one uv finds on the machine (uv
    never downloads one: builds must not fetch interpreters behind the user's back)."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if minor is None or minor == here:
        return Path(getattr(sys, "_base_executable", None) or sys.executable)
    found = subprocess.run([uv_binary(), "python", "find", "--no-python-downloads", minor], capture_output=True, text=True, env=_uv_env())
    if found.returncode == 0 and found.stdout.strip():
        return Path(found.stdout.strip())
    raise MpackError(
        f"the model was logged with Python {minor}, and no Python {minor} interpreter is installed on this machine",
        f"install Python {minor} (apt, pyenv or `uv python install {minor}`), then build again; or --env-manager local to convert under Python {here} (framework versions are still checked)",
    )


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise MpackError("uv is not installed, and the model's environment is built with it", "pip install uv, or --env-manager local")


def _create(interpreter: Path, folder: Path, wanted: list[str], logged: LoggedEnvironment, warn) -> None:
    _uv(["venv", "--quiet", "--relocatable", "--python", str(interpreter), str(folder)], "create a virtual environment")
    # bytecode compiled once, at install: the worker starts with -B (nothing written beside mpack's own
    # sources), and compiling scikit-learn, pandas and SciPy at every start cost seconds per build
    install = ["pip", "install", "--quiet", "--compile-bytecode", "--python", str(folder / "bin" / "python")]
    # The converters at this machine's versions may not resolve beside old pins: then let uv choose.
    named = {package_name(r) for r in logged.requirements}
    relaxed = list(logged.requirements) + [p for p in CONVERTERS + FLAVOR_CONVERTERS.get(logged.flavor, ()) if p not in named]
    install_packages(install, [wanted, relaxed], torch_sources(wanted), warn)


def install_packages(install: list[str], attempts: list[list[str]], sources: list[str], warn) -> list[str]:
    """``uv pip install`` of the first package list of ``attempts`` that installs, with the extra
    index ``sources`` name; once that index cannot be reached (a proxy, a closed network), the
    default index alone, with one warning, so a build still goes on. Returns the sources used."""
    what = "install the model's requirements"
    for packages in attempts:
        done = _run_uv([*install, *sources, *packages], what)
        unreachable = [url for url in _extra_indexes(sources) if f"Failed to fetch: {url}" in (done.stderr or "")] if done.returncode else []
        if unreachable:
            warn(f"the package index {unreachable[0]} cannot be reached; installing from the default index instead (PyPI's torch wheels bring CUDA libraries: set UV_INDEX_URL to a CPU index you can reach to avoid them)")
            sources = []
            done = _run_uv([*install, *packages], what)
        if done.returncode == 0:
            return sources
    raise _uv_failed(done, what)


def torch_sources(wanted: list[str]) -> list[str]:
    """PyTorch's CPU index beside PyPI when torch is needed and the user set no uv sources."""
    if "torch" not in {package_name(w) for w in wanted} or any(os.environ.get(name) for name in UV_SOURCES):
        return []
    return ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]


def _extra_indexes(sources: list[str]) -> list[str]:
    return [sources[i + 1].rstrip("/") for i, flag in enumerate(sources[:-1]) if flag == "--extra-index-url"]


def _uv(arguments: list[str], what: str) -> None:
    done = _run_uv(arguments, what)
    if done.returncode != 0:
        raise _uv_failed(done, what)


def _run_uv(arguments: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([uv_binary(), *arguments], capture_output=True, text=True, env=_uv_env(), timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise MpackError(f"uv did not {what} within {INSTALL_TIMEOUT_S} s", "check the package index is reachable, or use --env-manager local") from None


def _uv_failed(done: subprocess.CompletedProcess, what: str) -> MpackError:
    detail = " ".join((done.stderr or done.stdout).split())[-1500:]
    return MpackError(
        f"cannot {what} for the model's environment: {detail}",
        "the model's requirements.txt does not install here; fix the pins, point uv at your index (UV_INDEX_URL), or use --env-manager local",
    )


def _uv_env() -> dict:
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    return env
