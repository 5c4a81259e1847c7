"""Re-exporting package ``__init__``s made lazy (bundle/lazy_exports.py): on a synthetic package
imported in a fresh interpreter (what is loaded when, what every way of naming an export gives),
on shapes that must be left alone, and on the real werkzeug the azure bundle ships."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mpack.packager.bundle.dependencies import compile_tree
from mpack.packager.bundle.lazy_exports import make_exports_lazy, reexports

PACKAGE = {
    "pkg/__init__.py": '"""A package that re-exports."""\nfrom .heavy import Server as Server\nfrom .light import Request\nfrom .light import Response as Response\n',
    "pkg/heavy.py": "import sys\nsys.modules.setdefault('heavy_marker', sys)\nclass Server: pass\n",
    "pkg/light.py": "class Request: pass\nclass Response: pass\n",
    "pkg/other.py": "VALUE = 3\n",
}


def write(site: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)


def run(site: Path, code: str) -> dict:
    result = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys, json; sys.path.insert(0, {str(site)!r})\n" + textwrap.dedent(code)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reexporting_init_loads_its_submodules_on_first_use(tmp_path):
    write(tmp_path, PACKAGE)
    assert make_exports_lazy(tmp_path, ("pkg", "absent")) == ["pkg"]
    compile_tree(tmp_path)
    seen = run(
        tmp_path,
        """
        import pkg
        before = sorted(m for m in sys.modules if m.startswith("pkg.") or m == "heavy_marker")
        from pkg import Request
        after_light = sorted(m for m in sys.modules if m.startswith("pkg."))
        server = pkg.Server
        from pkg import *
        try:
            pkg.missing
            missing = "no error"
        except AttributeError as error:
            missing = str(error)
        print(json.dumps({
            "before": before, "after_light": after_light, "heavy_loaded": "heavy_marker" in sys.modules,
            "same": server is sys.modules["pkg.heavy"].Server and Request is sys.modules["pkg.light"].Request and Response is pkg.Response,
            "cached": "Server" in vars(pkg), "doc": pkg.__doc__, "submodule": pkg.other.VALUE, "missing": missing,
            "dir": [n for n in dir(pkg) if n in ("Server", "Request", "Response")],
        }))
        """,
    )
    assert seen["before"] == [], "nothing re-exported is imported by `import pkg`"
    assert seen["after_light"] == ["pkg.light"]
    assert seen["heavy_loaded"] and seen["same"] and seen["cached"]
    assert seen["doc"] == "A package that re-exports."
    assert seen["submodule"] == 3, "a submodule is still reachable as an attribute"
    assert seen["missing"] == "module 'pkg' has no attribute 'missing'"
    assert seen["dir"] == ["Request", "Response", "Server"]


@pytest.mark.parametrize(
    "source",
    [
        "from .a import b\nVALUE = 1\n",  # any other statement
        "from .a import b as c\n",  # a rename
        "from . import a\n",  # a submodule import
        "from a import b\n",  # an absolute import
        "from .a import *\n",
        "import os\n",
        '"""only a docstring"""\n',
    ],
)
def test_other_shapes_are_left_as_they_are(tmp_path, source):
    write(tmp_path, {"pkg/__init__.py": source})
    assert reexports(source) is None
    assert make_exports_lazy(tmp_path, ("pkg",)) == []
    assert (tmp_path / "pkg/__init__.py").read_text() == source


def test_werkzeug_as_azure_functions_uses_it(tmp_path):
    """The installed werkzeug and azure.functions (the azure bundle's pair), rewritten: azure.functions
    imports without werkzeug's server or test client, and everything werkzeug re-exported still resolves."""
    import azure.functions
    import werkzeug

    site = Path(werkzeug.__file__).parent.parent
    for name in ("werkzeug", "markupsafe"):
        shutil.copytree(site / name, tmp_path / name)
    shutil.copytree(Path(azure.functions.__file__).parent, tmp_path / "azure" / "functions")
    (tmp_path / "azure" / "__init__.py").write_text("")
    assert make_exports_lazy(tmp_path) == ["werkzeug"]
    seen = run(
        tmp_path,
        """
        import azure.functions as func
        loaded = {m: m in sys.modules for m in ("werkzeug", "werkzeug.serving", "werkzeug.test", "http.server")}
        request = func.HttpRequest(method="POST", url="http://localhost/api/x?a=1", headers={"content-type": "application/x-www-form-urlencoded"}, params={}, route_params={}, body=b"k=v")
        import werkzeug
        from werkzeug import Client, Response
        print(json.dumps({"loaded": loaded, "form": request.form["k"], "run_simple": werkzeug.run_simple.__module__, "client": Client.__module__, "response": Response.__module__}))
        """,
    )
    assert seen["loaded"] == {"werkzeug": True, "werkzeug.serving": False, "werkzeug.test": False, "http.server": False}
    assert seen["form"] == "v"
    assert (seen["run_simple"], seen["client"], seen["response"]) == ("werkzeug.serving", "werkzeug.test", "werkzeug.wrappers.response")
