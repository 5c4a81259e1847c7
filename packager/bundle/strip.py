"""What a bundle does not need at run time, removed from installed packages.

Tests, headers, type stubs and static libraries everywhere; onnxruntime's Python tooling
(quantization, transformers, tools) and its C-API shared library, which the Python extension
does not link. numpy's OpenBLAS is never stripped of symbols: that breaks import.

Once precompiled, the libraries' sources go too (``drop_sources``): each module ships as its
unchecked-hash .pyc in the source's place, which Python imports without looking for a source (about
1 MB less in a zip; a traceback through library code names file and line, without the line's text).
mpack's own handler modules keep their sources.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REMOVED_DIR_NAMES = frozenset(("tests", "__pycache__"))
REMOVED_SUFFIXES = (".pyi", ".pxd", ".pyx", ".h", ".hpp", ".c", ".cpp", ".a", ".lib")
REMOVED_PATHS = (
    "bin",
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    "numpy/f2py",
    "numpy/_pyinstaller",
    "numpy/distutils",
    "numpy/doc",
    "numpy/_core/include",
    "numpy/_core/lib",
    "numpy/core/include",
    "numpy/core/lib",
)
REMOVED_GLOBS = ("onnxruntime/capi/libonnxruntime.so*",)
NEVER_BUNDLED = ("boto3", "botocore", "s3transfer")  # provided by the Lambda runtime


NEEDED_BY_SCIPY = ("numpy/f2py",)  # scipy and scikit-learn import it: kept for the native runtime


def strip_site(site: Path, native: bool = False) -> int:
    """Remove what is not needed at run time; returns the bytes removed."""
    before = _size(site)
    for relative in REMOVED_PATHS:
        if not (native and relative in NEEDED_BY_SCIPY):
            _remove(site / relative)
    for pattern in REMOVED_GLOBS:
        for path in site.glob(pattern):
            _remove(path)
    for name in NEVER_BUNDLED:
        _remove(site / name)
        for info in site.glob(f"{name}-*.dist-info"):
            _remove(info)
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in REMOVED_DIR_NAMES:
            _remove(path)
        elif path.is_file() and path.suffix in REMOVED_SUFFIXES:
            path.unlink()
    return before - _size(site)


def drop_sources(site: Path) -> int:
    """Move every ``__pycache__/NAME.TAG.pyc`` beside its package as ``NAME.pyc`` and delete
    ``NAME.py``; modules without a .pyc keep their source. Returns the modules made sourceless."""
    moved = 0
    for cache in sorted(site.rglob("__pycache__")):
        for compiled in sorted(cache.glob("*.pyc")):
            module = compiled.name.split(".", 1)[0]
            source = cache.parent / f"{module}.py"
            if source.is_file():
                os.replace(compiled, cache.parent / f"{module}.pyc")
                source.unlink()
                moved += 1
        if not any(cache.iterdir()):
            cache.rmdir()
    return moved


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
