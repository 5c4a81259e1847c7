"""What a logged model says about its environment, and the checks made before trusting a load."""

from __future__ import annotations

import sys
from importlib.metadata import version

import pytest

from mpack.infra.errors import MpackError
from mpack.packager.source.environment import check_env_manager, environment_requirements, find_python, local_environment
from mpack.packager.source.requirements import LoggedEnvironment, logged_environment, package_name, pinned_version, requirement_lines

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_requirement_lines_drop_mlflow_comments_and_options(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("mlflow==3.1.0\n# a comment\n-r other.txt\nscikit-learn==1.5.2  # trained with\nmlflow-skinny\nNumPy_Lib>=1\n\n")
    assert requirement_lines(path) == ["scikit-learn==1.5.2", "NumPy_Lib>=1"]
    assert package_name("NumPy_Lib>=1") == "numpy-lib" and package_name("torch[cpu]==2.1") == "torch"
    assert pinned_version(["torch==2.13.0+cpu", "numpy>=1"], "torch") == "2.13.0+cpu"
    assert pinned_version(["numpy>=1"], "numpy") is None


def test_logged_environment_reads_python_and_framework(tmp_path):
    (tmp_path / "requirements.txt").write_text("xgboost==2.0.3\npandas==2.2.0\n")
    (tmp_path / "python_env.yaml").write_text("python: 3.10.14\nbuild_dependencies: [pip]\n")
    logged = logged_environment(tmp_path, {"xgboost": {"xgb_version": "9.9"}, "python_function": {"python_version": "3.12.1"}})
    assert (logged.python, logged.framework, logged.framework_version) == ("3.10", "xgboost", "2.0.3")
    (tmp_path / "python_env.yaml").unlink()
    (tmp_path / "requirements.txt").unlink()
    logged = logged_environment(tmp_path, {"sklearn": {"sklearn_version": "1.4.2"}, "python_function": {"python_version": "3.12.1"}})
    assert (logged.python, logged.framework_version, logged.requirements) == ("3.12", "1.4.2", ())


def test_environment_requirements_keep_the_models_pins_and_add_converters():
    logged = LoggedEnvironment(("scikit-learn==1.5.2", "onnx==1.15.0", "numpy==1.26.4"), HERE, "scikit-learn", "1.5.2")
    wanted = environment_requirements(logged)
    assert "scikit-learn==1.5.2" in wanted and "onnx==1.15.0" in wanted and "numpy==1.26.4" in wanted
    assert sum(package_name(w) == "onnx" for w in wanted) == 1
    assert f"skl2onnx=={version('skl2onnx')}" in wanted
    assert "pandas" in wanted  # follows the model's numpy, never pinned to this machine's


def test_local_environment_refuses_another_framework_version():
    with pytest.raises(MpackError) as caught:
        local_environment(LoggedEnvironment(("scikit-learn==0.24.2",), HERE, "scikit-learn", "0.24.2"))
    assert "scikit-learn==0.24.2" in caught.value.message and version("scikit-learn") in caught.value.message
    assert "pip install 'scikit-learn==0.24.2'" in caught.value.hint


def test_local_environment_refuses_a_missing_framework_and_another_python():
    with pytest.raises(MpackError, match="this environment has no jax"):
        local_environment(LoggedEnvironment(("jax==0.4.1",), HERE, "jax", "0.4.1"))
    with pytest.raises(MpackError, match="logged with Python 3.9 and --env-manager local runs Python"):
        local_environment(LoggedEnvironment((), "3.9", None, None))
    assert local_environment(LoggedEnvironment((f"scikit-learn=={version('scikit-learn')}",), HERE, "scikit-learn", version("scikit-learn"))).manager == "local"


def test_a_python_that_is_not_installed_is_named_with_the_fix():
    with pytest.raises(MpackError) as caught:
        find_python("3.2")
    assert "no Python 3.2 interpreter" in caught.value.message and "uv python install 3.2" in caught.value.hint


def test_env_manager_names_are_checked():
    assert check_env_manager("uv") == "uv"
    with pytest.raises(MpackError, match="--env-manager conda"):
        check_env_manager("conda")


def _closed_loopback_index() -> str:
    """A URL on this machine where nothing listens: an index that cannot be reached."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"


def test_an_unreachable_extra_index_falls_back_to_the_default_index_with_a_warning(tmp_path):
    """Real uv, a real install from the default index (PyPI or the machine's uv settings)."""
    import subprocess

    from mpack.packager.source.environment import _uv, install_packages

    folder = tmp_path / "env"
    _uv(["venv", "--quiet", "--python", sys.executable, str(folder)], "create a virtual environment")
    install = ["pip", "install", "--quiet", "--python", str(folder / "bin" / "python")]
    index = _closed_loopback_index()
    warnings: list[str] = []
    used = install_packages(install, [["six"]], ["--extra-index-url", index, "--index-strategy", "unsafe-best-match"], warnings.append)
    assert used == []
    assert len(warnings) == 1 and index in warnings[0] and "default index" in warnings[0]
    subprocess.run([str(folder / "bin" / "python"), "-c", "import six"], check=True)
    # a requirement that exists nowhere is still refused, after the fallback, naming the package
    with pytest.raises(MpackError, match="mpack-no-such-package-anywhere"):
        install_packages(install, [["mpack-no-such-package-anywhere==1.0"]], ["--extra-index-url", index], warnings.append)


def test_torch_is_asked_of_pytorchs_cpu_index_unless_the_user_names_uv_sources(monkeypatch):
    from mpack.packager.source.environment import TORCH_CPU_INDEX, UV_SOURCES, torch_sources

    for name in UV_SOURCES:
        monkeypatch.delenv(name, raising=False)
    assert TORCH_CPU_INDEX in torch_sources(["numpy==2.1", "torch==2.13.0+cpu"])
    assert torch_sources(["numpy==2.1"]) == []
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:1/simple")
    assert torch_sources(["torch==2.13.0"]) == []
