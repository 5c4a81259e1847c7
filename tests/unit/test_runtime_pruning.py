"""What a runtime library loses in a bundle: subpackages no import reaches (bundle/unreachable.py)
and, once precompiled, its sources (strip.drop_sources) — on small synthetic libraries whose import
graph is known, then run to prove that what stays still imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from mpack.packager.bundle.dependencies import compile_tree
from mpack.packager.bundle.strip import drop_sources
from mpack.packager.bundle.unreachable import (
    Importability,
    PrunableLibrary,
    remove_unreachable,
)

LIBRARY = PrunableLibrary("lib", ("lib", "lib.used"), ("lib.lazy", "lib.rare", "lib.dead_end"), ("lib.utilities",))


def write(site: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def synthetic_site(site: Path) -> None:
    write(
        site,
        {
            "lib/__init__.py": """
                from . import used
                def __getattr__(name):  # PEP 562: only an attribute access loads it
                    if name != "lazy":
                        raise AttributeError(name)
                    import lib.lazy
                    return lib.lazy
            """,
            "lib/used.py": """
                def rarely():
                    from lib import rare  # a function-level import keeps its target
                    return rare.VALUE
                def needs_pydantic():
                    from lib.dead_end.models import Model  # can never import here: pydantic is absent
                    return Model
            """,
            "lib/lazy/__init__.py": "VALUE = 1\n",
            "lib/rare/__init__.py": "VALUE = 2\n",
            "lib/dead_end/__init__.py": "",
            "lib/dead_end/models.py": "from pydantic import BaseModel\nclass Model(BaseModel): pass\n",
            "lib/utilities/__init__.py": "",
            "lib/utilities/batch/__init__.py": "import json\n",
            "lib/utilities/idempotency/__init__.py": "import json\n",
            "other/__init__.py": "from lib.utilities import batch  # another installed library's import counts\n",
        },
    )


def remaining(site: Path) -> set[str]:
    return {path.relative_to(site).as_posix() for path in site.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


def test_only_unreachable_candidates_are_removed(tmp_path):
    synthetic_site(tmp_path)
    removed = remove_unreachable(tmp_path, (LIBRARY,))
    assert removed == ["lib.lazy", "lib.dead_end", "lib.utilities.idempotency"]
    assert remaining(tmp_path) == {"lib/__init__.py", "lib/used.py", "lib/rare/__init__.py", "lib/utilities/__init__.py", "lib/utilities/batch/__init__.py", "other/__init__.py"}
    run = subprocess.run([sys.executable, "-S", "-c", "import lib, other; print(lib.used.rarely())"], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "2", run.stderr


def test_importability_follows_unconditional_imports_through_cycles(tmp_path):
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "from pkg import a\nimport missing_library\n",
            "pkg/c.py": "try:\n    import missing_library\nexcept ImportError:\n    pass\nimport boto3, json\n",
            "pkg/d.py": "if False:\n    import missing_library\nfrom pkg import c\n",
        },
    )
    importable = Importability(tmp_path)
    assert not importable("pkg.b") and not importable("pkg.a")  # a needs b, which needs a library the bundle lacks
    assert importable("pkg.c") and importable("pkg.d")  # guarded imports and Lambda's own boto3 do not count
    assert not importable("missing_library") and importable("json") and importable("boto3")


def test_nothing_is_removed_from_a_library_the_site_does_not_have(tmp_path):
    write(tmp_path, {"other/__init__.py": "import json\n"})
    assert remove_unreachable(tmp_path, (LIBRARY,)) == []


def test_precompiled_libraries_ship_bytecode_in_place_of_sources(tmp_path):
    write(tmp_path, {"lib/__init__.py": "from lib.inner import VALUE\n", "lib/inner.py": "VALUE = 42\n", "lib/data.txt": "kept\n"})
    compile_tree(tmp_path)
    assert drop_sources(tmp_path) == 2
    assert remaining(tmp_path) == {"lib/__init__.pyc", "lib/inner.pyc", "lib/data.txt"}
    assert not list(tmp_path.rglob("__pycache__"))
    run = subprocess.run([sys.executable, "-S", "-c", "import lib; print(lib.VALUE, lib.__file__.endswith('__init__.pyc'))"], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert run.stdout.split() == ["42", "True"], run.stderr


def test_a_module_without_bytecode_keeps_its_source(tmp_path):
    write(tmp_path, {"lib/__init__.py": "", "lib/script.py": "VALUE = 1\n"})
    (tmp_path / "lib" / "__pycache__").mkdir()
    assert drop_sources(tmp_path) == 0
    assert remaining(tmp_path) == {"lib/__init__.py", "lib/script.py"}
