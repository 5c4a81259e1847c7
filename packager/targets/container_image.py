"""``--target container``: an HTTP server image (uvicorn + the Starlette app) speaking the MLflow
scoring protocol, the Open Inference Protocol and the SageMaker contract on port 8080.

Image layout: /opt/mpack/deps (runtime libraries), /opt/mpack/model (model.onnx + mpack.json),
/opt/mpack/app (mpack/handlers). Default base: python:<py>-slim (pulled by the user; mpack never pulls).
"""

from __future__ import annotations

from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.image.build import ImageLayer, ImageRecipe, default_image_tag
from mpack.packager.targets.handler_code import handler_code, model_folder

ROOT = "/opt/mpack"
PORT = 8080


class ContainerImageTarget:
    name = "container"
    kind = "image"
    handler = "mpack.handlers.container_main"
    glibc_minor = 28  # python:3.x-slim is Debian bookworm or newer

    handler_modules = ()
    standard_library_bundles = False
    python_containers = False
    default_batch_rows = 0  # batching off unless asked

    def recorded_options(self, options) -> dict:
        """The server's defaults; MPACK_MAX_BATCH_* override them at run time."""
        rows = self.default_batch_rows if options.max_batch_size is None else options.max_batch_size
        return {"max_batch_size": rows, "max_batch_wait_ms": 2.0 if options.max_batch_wait_ms is None else options.max_batch_wait_ms}

    def runtime_packages(self, lambda_http: str) -> str:
        return "container"

    def entry_modules(self, standard_library: bool, lambda_http: str) -> tuple[str, ...]:
        return ("container_main", "container_app")  # uvicorn imports the app by name

    def check_options(self, options) -> None:
        if options.max_batch_size is not None and not 0 <= options.max_batch_size <= 65536:
            raise MpackError(f"--max-batch-size {options.max_batch_size} is out of range", "give the most rows one model run may take, 0 to 65536 (0 or 1: no batching)")
        if options.max_batch_wait_ms is not None and not 0 <= options.max_batch_wait_ms <= 1000:
            raise MpackError(f"--max-batch-wait-ms {options.max_batch_wait_ms:g} is out of range", "give 0 to 1000 ms (a lone request never waits; this bounds the wait under load)")

    verify_environment: dict = {}

    def verify_image(self, client, image, recipe, manifest: dict, request: dict, expected, tolerance: float, progress):
        """Started with its port published on 127.0.0.1, asked the input example over HTTP."""
        from mpack.packager.check.image_verify import verify_http_image

        verification = verify_http_image(client, image.tag, recipe.expose or PORT, request, expected, tolerance, dict(self.verify_environment))
        progress.note(f"the image answered the input example {verification.init_seconds * 1000:.0f} ms after docker run")
        return verification

    def default_base(self, python: str) -> str:
        return f"python:{python}-slim"

    def default_tag(self, model_name: str, version: str) -> str:
        return default_image_tag(model_name, version, self.name)

    def recipe(self, base: str, runtime_site: Path, files: list, modules: frozenset[str], workdir: Path, precompile: bool, labels: dict) -> ImageRecipe:
        model = model_folder(workdir / "model", files)
        app = handler_code(workdir / "app", modules, precompile=precompile)
        return ImageRecipe(
            base=base,
            layers=(ImageLayer("deps", runtime_site, f"{ROOT}/deps"), ImageLayer("model", model, f"{ROOT}/model"), ImageLayer("app", app, f"{ROOT}/app")),
            entrypoint=("python3", "-S", "-m", self.handler),  # -S: no site-packages scan at start (PYTHONPATH is the path)
            command=("serve",),
            environment={"PYTHONPATH": f"{ROOT}/app:{ROOT}/deps", "MPACK_BUNDLE_ROOT": f"{ROOT}/model", "PORT": str(PORT)},
            labels=labels,
            expose=PORT,
        )
