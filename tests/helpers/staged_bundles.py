"""Build states from the build's own stages (``pipeline.staged``) for tests that serve a model folder
in process — a gpu image's without building the image.

A ``--target gpu`` build's libraries are onnxruntime-gpu and its CUDA wheels (gigabytes); the model
folder (``state.files``: the model file and mpack.json) does not depend on them. ``gpu_state`` runs
every stage for real and only stands in for the download: the dependencies stage is handed an empty
site folder instead, and what it asked to install (the gpu plan) is kept for the test to check.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from mpack.packager.bundle.dependencies import InstalledRuntime
from mpack.packager.pipeline import BuildOptions, staged
from mpack.packager.stages import dependencies
from mpack.packager.targets.handler_code import model_folder


@contextmanager
def gpu_state(options: BuildOptions, through: str = "manifest"):
    """(state after ``through``, the runtime plans the dependencies stage asked to install)."""
    asked = []
    with tempfile.TemporaryDirectory(prefix="mpack-no-cuda-") as empty, ExitStack() as scope:

        def without_cuda_wheels(plan, *args, **kwargs) -> InstalledRuntime:
            asked.append(plan)
            return InstalledRuntime(Path(empty), True, "cuda-wheels-not-downloaded", plan.matches_host)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(dependencies, "install_runtime", without_cuda_wheels)
            state = scope.enter_context(staged(options, through=through))
        yield state, asked


def lay_out(state, folder: Path) -> Path:
    """The state's files as the model folder an image holds (the targets' own ``model_folder``)."""
    return model_folder(folder, state.files)
