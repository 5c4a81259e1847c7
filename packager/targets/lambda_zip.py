"""``--target lambda``: an AWS Lambda zip (handler ``mpack_handler.handler``).

Layout at the zip root: the runtime packages, ``mpack/handlers`` (the adapter and protocol core),
``mpack_handler.py``, ``model.onnx`` and ``mpack.json``. With ``--runtime micro``: no packages,
only the standard-library handler modules, and ``model_micro.py`` (the compiled model, precompiled
beside the handlers) instead of model.onnx.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.bundle.zip_writer import BundleEntry, tree_entries
from mpack.packager.targets.handler_code import handler_code, package_dir
from mpack.packager.targets.handler_code import precompile as precompile_code

ZIPPED_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024


class LambdaZipTarget:
    name = "lambda"
    kind = "zip"
    handler = "mpack_handler.handler"
    glibc_minor = None  # Lambda's, from the Python version
    verified_where = "in a fresh interpreter"
    standard_library_bundles = True  # a runtime that needs no libraries (micro) ships only the standard-library handler
    handler_modules = ("lambda_sqs", "lambda_asgi")  # branches taken at run time: Powertools' SQS batches (the micro entry has its own), Mangum
    python_containers = True  # a zip for another Python is compiled, measured and verified in a container of it

    def recorded_options(self, options) -> dict:
        return {}

    def runtime_packages(self, lambda_http: str) -> str:
        return lambda_http

    def entry_modules(self, standard_library: bool, lambda_http: str) -> tuple[str, ...]:
        if standard_library:
            return ("micro_lambda",)
        return ("lambda_function", "lambda_sqs", *(("lambda_asgi",) if lambda_http == "asgi" else ()))

    def default_output(self, stem: str) -> Path:
        return Path("dist") / f"{stem}-lambda.zip"

    def entries(self, runtime_site: Path, files: list, modules: frozenset[str], standard_library: bool, workdir: Path, precompile) -> list[BundleEntry]:
        """The libraries, the handler modules, the entry point and the state's files at the zip root;
        Python files among them (a compiled model) are precompiled with the handlers."""
        code = handler_code(workdir / "code", modules, precompile=False)
        template = "mpack_handler_micro.py" if standard_library else "mpack_handler.py"
        shutil.copyfile(package_dir("mpack.templates") / "lambda" / template, code / "mpack_handler.py")
        for file in files:
            if file.name.endswith(".py"):
                (code / file.name).write_bytes(file.data)
        precompile_code(code, precompile)
        return [*tree_entries(runtime_site), *tree_entries(code), *(BundleEntry(file.name, data=file.data) for file in files if not file.name.endswith(".py"))]

    def check_limits(self, entries: list[BundleEntry]) -> None:
        unzipped = sum(e.size for e in entries)
        if unzipped > UNZIPPED_LIMIT:
            largest = sorted(entries, key=lambda e: -e.size)[:3]
            raise MpackError(
                f"bundle is {unzipped / 2**20:.0f} MB unzipped, over Lambda's 250 MB limit for zips (largest: {', '.join(f'{e.name} {e.size / 2**20:.0f} MB' for e in largest)})",
                "use an image target (--target lambda-image, up to 10 GB)",
            )

    def warnings(self, zipped_bytes: int) -> list[str]:
        if zipped_bytes > ZIPPED_DIRECT_UPLOAD_LIMIT:
            return [f"bundle is {zipped_bytes / 2**20:.1f} MB zipped, over the 50 MB direct-upload limit: deploy will upload it through S3"]
        return []

    def verify(self, bundle: Path, request: dict, expected, tolerance: float, forbidden: tuple[str, ...]):
        from mpack.packager.check.verify import verify_bundle

        return verify_bundle(bundle, request, expected, tolerance, forbidden)
