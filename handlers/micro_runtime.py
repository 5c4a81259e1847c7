"""The micro runtime: a model compiled at build time to ``model_micro.py`` (standard-library Python,
see packager/micro), loaded and run with nothing but the standard library.

The module's text is the bundle's model file: its sha256 is checked against the manifest like an
ONNX file's, then it is imported through its precompiled unchecked-hash .pyc (no compile at cold
start; Lambda's code folder is read-only).
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import SourceFileLoader

from .errors import ModelLoadError

MODULE_NAME = "mpack_model_micro"


class MicroSession:
    """ONNX Runtime's ``run(output_names, feeds)`` over the compiled row function: feeds are plain
    rows per input, outputs plain nested lists (what ``ndarray.tolist()`` gives)."""

    def __init__(self, module, inputs: list[str], outputs: list[str]) -> None:
        self.row = module.row
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.shapes = module.OUTPUT_SHAPES

    def run(self, output_names, feeds: dict) -> list[list]:
        picks = [self.outputs.index(name) for name in (output_names or self.outputs)]
        columns = [feeds[name] for name in self.inputs]
        results: list[list] = [[] for _ in picks]
        shaped = [(results[n], index, _shaper(self.shapes[index])) for n, index in enumerate(picks)]
        row = self.row
        for args in zip(*columns):
            values = row(*args)
            for out, index, shape in shaped:
                out.append(shape(values[index]))
        return results


def _scalar(value):
    return value[0]


def _shaper(shape):
    """How one row of an output becomes its JSON value: a scalar, a list, nested lists or a map."""
    if shape == "map":
        return dict
    if shape == ():
        return _scalar
    if len(shape) == 1:
        return list
    width = shape[-1]

    def nested(value):
        flat = list(value)
        return [flat[i : i + width] for i in range(0, len(flat), width)] if len(shape) == 2 else flat

    return nested


def load_micro(root, manifest: dict) -> MicroSession:
    """The compiled model of the bundle at ``root`` (its sha256 already verified by the loader),
    from its precompiled .pyc when the bundle has one."""
    micro = manifest.get("micro") or {}
    path = os.path.join(root, manifest["model"]["file"])
    loader = SourceFileLoader(MODULE_NAME, path)
    module = type(sys)(MODULE_NAME)
    module.__file__, module.__loader__ = path, loader
    try:
        loader.exec_module(module)
    except Exception as exc:  # a damaged module: whatever it raises, the bundle cannot serve
        raise ModelLoadError(f"the micro model {os.path.basename(path)} does not load: {type(exc).__name__}: {exc}") from None
    return MicroSession(module, micro.get("inputs") or [], micro.get("outputs") or [])


def session_from_source(source: bytes | str, micro: dict) -> MicroSession:
    """A session over a compiled module's text, without a file (the build's parity gate and checks)."""
    module = type(sys)(MODULE_NAME)
    exec(compile(source, "model_micro.py", "exec"), module.__dict__)  # noqa: S102 - mpack's compiler's own output
    return MicroSession(module, micro.get("inputs") or [], micro.get("outputs") or [])
