"""``--target lambda``: an AWS Lambda zip (handler ``mpack_handler.handler``).

Layout at the zip root: the runtime packages, ``mpack/handlers`` (the adapter and protocol core),
``mpack_handler.py``, ``model.onnx`` and ``mpack.json``. With ``--runtime micro``: no packages,
only the standard-library handler modules, and ``model_micro.py`` (the compiled model, precompiled
beside the handlers) instead of model.onnx.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.bundle.dependencies import compile_tree
from mpack.packager.bundle.manifest import MANIFEST_NAME
from mpack.packager.bundle.zip_writer import BundleEntry, tree_entries
from mpack.packager.targets.handler_code import handler_code, package_dir

CONTAINER_ONLY = ("container_", "open_inference", "binary_tensors")  # handler modules a Lambda function never imports
MICRO_ONLY = ("micro_", "row_feeds", "lambda_json_log")
ZIP_EXCLUDED = (*CONTAINER_ONLY, "native_model", *MICRO_ONLY)  # ONNX zips leave the native and micro runtimes out
# what the micro runtime's handler imports: standard library only (checked by the layering test)
MICRO_MODULES = ("__init__", "errors", "signature", "mlflow_request", "protocol", "row_feeds", "loader", "manifest", "lambda_sources", "lambda_json_log", "snapstart", "micro_")
ZIPPED_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024


class LambdaZipTarget:
    name = "lambda"
    kind = "zip"
    handler = "mpack_handler.handler"
    glibc_minor = None  # Lambda's, from the Python version
    verified_where = "in a fresh interpreter"

    def runtime_packages(self, lambda_http: str) -> str:
        return lambda_http

    def default_output(self, stem: str) -> Path:
        return Path("dist") / f"{stem}-lambda.zip"

    def entries(self, runtime_site: Path, model_bytes: bytes, manifest: bytes, workdir: Path, precompile: bool) -> list[BundleEntry]:
        contract = json.loads(manifest)
        if contract.get("micro"):
            return self._micro_entries(model_bytes, manifest, contract, workdir, precompile)
        native = bool(contract.get("native"))  # --runtime native: the model's own libraries
        code = handler_code(workdir / "code", exclude=CONTAINER_ONLY if native else ZIP_EXCLUDED, precompile=False)
        shutil.copyfile(package_dir("mpack.templates") / "lambda" / "mpack_handler.py", code / "mpack_handler.py")
        _precompile(code, precompile)
        return [
            *tree_entries(runtime_site),
            *tree_entries(code),
            BundleEntry(contract["model"]["file"], data=model_bytes),  # model.onnx, or a native model's own file
            BundleEntry(MANIFEST_NAME, data=manifest),
        ]

    @staticmethod
    def _micro_entries(model_bytes: bytes, manifest: bytes, contract: dict, workdir: Path, precompile: bool) -> list[BundleEntry]:
        """The standard-library handler modules and the compiled model, precompiled together."""
        others = tuple(p.stem for p in package_dir("mpack.handlers").glob("*.py") if not p.stem.startswith(MICRO_MODULES))
        code = handler_code(workdir / "code", exclude=others, precompile=False)
        shutil.copyfile(package_dir("mpack.templates") / "lambda" / "mpack_handler_micro.py", code / "mpack_handler.py")
        (code / contract["model"]["file"]).write_bytes(model_bytes)
        _precompile(code, precompile)
        return [*tree_entries(code), BundleEntry(MANIFEST_NAME, data=manifest)]

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


def _precompile(folder: Path, precompile) -> None:
    """``precompile``: True (this interpreter is the target's), a compiler for another Python
    (infra/local/python_container.container_compiler), or False."""
    if callable(precompile):
        precompile(folder)
    elif precompile:
        compile_tree(folder)
