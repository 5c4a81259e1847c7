"""``--target gpu``: the HTTP container's server on onnxruntime-gpu, for heavy models on GPUs
(Kubernetes/KServe, Cloud Run, SageMaker, ECS).

No CUDA base image: the CUDA and cuDNN runtime libraries are exactly the nvidia-* wheels that this
onnxruntime-gpu version names in its ``[cuda,cudnn]`` extras (``onnxruntime.preload_dlls()`` loads
them at start), on the same slim Python base as ``--target container`` — nothing is installed
twice. onnxruntime and CUDA majors are pinned together and named in the labels. Layers, so that a
new model version pulls only its weights: base, Python libraries, CUDA libraries, model, app.
Defaults that differ from the container target: dynamic batching on (64 rows) and ``require_gpu``
(readiness fails, naming the missing library, instead of serving from the CPU).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mpack.packager.image.build import ImageLayer, ImageRecipe, default_image_tag, link_or_copy
from mpack.packager.targets.container_image import PORT, ROOT, ContainerImageTarget
from mpack.packager.targets.handler_code import handler_code, model_folder

CUDA_FOLDER = "nvidia"  # where the nvidia-* wheels install their libraries
DEFAULT_BATCH_ROWS = 64


class GpuImageTarget(ContainerImageTarget):
    name = "gpu"
    handler_modules = ("gpu_session",)  # the loader's CUDA branch: Lambda and Azure bundles never take it (the HTTP app imports it)
    default_batch_rows = DEFAULT_BATCH_ROWS
    half_precision = True  # --precision fp16: a GPU computes float16 natively
    graph_optimization = "basic"  # standard operators only; the session fuses for CUDA when it loads (convert/optimize.py)

    def runtime_packages(self, lambda_http: str) -> str:
        return "gpu"

    verify_environment = {"MPACK_REQUIRE_GPU": "0"}  # no GPU is handed to the verifying container: the CPU answers, said so

    def verify_image(self, client, image, recipe, manifest: dict, request: dict, expected, tolerance: float, progress):
        progress.warn("the gpu image was verified on the CPU (MPACK_REQUIRE_GPU=0): the CUDA provider is not exercised by the build")
        return super().verify_image(client, image, recipe, manifest, request, expected, tolerance, progress)

    def recorded_options(self, options) -> dict:
        return {**super().recorded_options(options), "require_gpu": options.require_gpu is not False}

    def default_tag(self, model_name: str, version: str) -> str:
        return default_image_tag(model_name, version, self.name)

    def recipe(self, base: str, runtime_site: Path, files: list, modules: frozenset[str], workdir: Path, precompile: bool, labels: dict) -> ImageRecipe:
        model = model_folder(workdir / "model", files)
        app = handler_code(workdir / "app", modules, precompile=precompile)
        python_libraries, cuda_libraries = split_cuda_libraries(runtime_site, workdir / "split")
        layers = [ImageLayer("deps", python_libraries, f"{ROOT}/deps")]
        if cuda_libraries is not None:
            layers.append(ImageLayer("cuda", cuda_libraries, f"{ROOT}/deps/{CUDA_FOLDER}"))
        layers += [ImageLayer("model", model, f"{ROOT}/model"), ImageLayer("app", app, f"{ROOT}/app")]
        return ImageRecipe(
            base=base,
            layers=tuple(layers),
            entrypoint=("python3", "-S", "-m", self.handler),
            command=("serve",),
            environment={
                "PYTHONPATH": f"{ROOT}/app:{ROOT}/deps",
                "MPACK_BUNDLE_ROOT": f"{ROOT}/model",
                "PORT": str(PORT),
                "NVIDIA_VISIBLE_DEVICES": "all",
                "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
            },
            labels=labels,
            expose=PORT,
        )


def split_cuda_libraries(site: Path, work: Path) -> tuple[Path, Path | None]:
    """(the Python libraries without nvidia/, nvidia/ or None): two layers from one installed site,
    linked rather than copied (the runtime cache stays as it is)."""
    cuda = site / CUDA_FOLDER
    if not cuda.is_dir():
        return site, None
    python_libraries = work / "deps"
    shutil.rmtree(python_libraries, ignore_errors=True)
    shutil.copytree(site, python_libraries, ignore=lambda folder, names: [CUDA_FOLDER] if Path(folder) == site else [], copy_function=link_or_copy)
    return python_libraries, cuda
