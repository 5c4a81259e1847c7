"""``--target lambda-image``: a Lambda container image with the same handler and libraries as the
zip target, laid out in /var/task. On AWS's own base images (public.ecr.aws/lambda/python) their
entry point runs it; on any other base, AWS's runtime interface client (awslambdaric, its own layer
in /opt/mpack/runtime) is the entry point, as AWS documents for custom base images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mpack.packager.image.build import ImageLayer, ImageRecipe, default_image_tag
from mpack.packager.targets.handler_code import handler_code, model_folder, package_dir
from mpack.packager.targets.handler_code import precompile as precompile_code
from mpack.packager.targets.lambda_zip import LambdaZipTarget

TASK_ROOT = "/var/task"
RUNTIME_DIR = "/opt/mpack/runtime"
AWS_BASES = ("public.ecr.aws/lambda/", "amazon/aws-lambda-")
HANDLER = "mpack_handler.handler"


class LambdaImageTarget:
    name = "lambda-image"
    kind = "image"
    handler = HANDLER
    glibc_minor = None  # the same libraries as the zip: they run on AWS's base (glibc 2.26) and newer

    handler_modules = ("lambda_sqs", "lambda_asgi")  # as the zip's
    standard_library_bundles = False
    python_containers = False

    def recorded_options(self, options) -> dict:
        return {}

    def runtime_packages(self, lambda_http: str) -> str:
        return lambda_http

    def entry_modules(self, standard_library: bool, lambda_http: str) -> tuple[str, ...]:
        return LambdaZipTarget.entry_modules(self, False, lambda_http)

    def verify_image(self, client, image, recipe, manifest: dict, request: dict, expected, tolerance: float, progress):
        """On the local Lambda platform, as Lambda runs the image."""
        from mpack.packager.check.image_verify import verify_lambda_image

        verification = verify_lambda_image(client, image.tag, manifest, request, expected, tolerance)
        progress.note(f"answered the input example on the local Lambda platform (Init Duration {verification.init_seconds * 1000:.0f} ms)")
        return verification

    def default_base(self, python: str) -> str:
        return f"public.ecr.aws/lambda/python:{python}"

    def default_tag(self, model_name: str, version: str) -> str:
        return default_image_tag(model_name, version, self.name)

    def recipe(self, base: str, runtime_site: Path, files: list, modules: frozenset[str], workdir: Path, precompile: bool, labels: dict) -> ImageRecipe:
        model = model_folder(workdir / "model", files)
        app = handler_code(workdir / "app", modules, precompile=False)
        shutil.copyfile(package_dir("mpack.templates") / "lambda" / "mpack_handler.py", app / "mpack_handler.py")
        precompile_code(app, precompile)
        layers = [ImageLayer("deps", runtime_site, TASK_ROOT), ImageLayer("model", model, TASK_ROOT), ImageLayer("app", app, TASK_ROOT)]
        environment = {"LAMBDA_TASK_ROOT": TASK_ROOT}
        entrypoint: tuple[str, ...] = ()
        if not base.startswith(AWS_BASES):
            from mpack.infra.local.runtime_dir import runtime_dir
            from mpack.packager.bundle.dependencies import default_cache_dir

            layers.insert(0, ImageLayer("runtime", runtime_dir(default_cache_dir()), RUNTIME_DIR))
            environment.update(PYTHONPATH=RUNTIME_DIR, LAMBDA_RUNTIME_DIR=RUNTIME_DIR)
            entrypoint = ("python3", "-m", "awslambdaric")
        return ImageRecipe(base=base, layers=tuple(layers), entrypoint=entrypoint, command=(HANDLER,), environment=environment, labels={**labels, "io.mpack.handler": HANDLER}, workdir=TASK_ROOT)
