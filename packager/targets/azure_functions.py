"""``--target azure``: an Azure Functions app (Python v2 programming model) as a deployable zip.

Layout at the zip root, as the Functions host expects it when a package runs as-is (no remote build):
``function_app.py`` (indexed by the Python worker), ``host.json`` (route prefix ``api``),
``requirements.txt`` (what ``.python_packages`` holds, for people and tools that read it),
``.python_packages/lib/site-packages`` (the runtime libraries, manylinux wheels for Azure's
Debian-based Linux workers), ``mpack/handlers`` (the adapter and protocol core), the model file and
``mpack.json``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.infra.functions_host.app_config import DEFAULT_INSTANCE_MEMORY_MB, INSTANCE_MEMORY_MB
from mpack.packager.bundle.runtime_plan import DIRECT_HTTP
from mpack.packager.bundle.zip_writer import BundleEntry, tree_entries
from mpack.packager.targets.handler_code import handler_code, package_dir
from mpack.packager.targets.handler_code import precompile as precompile_code

SITE_PACKAGES = ".python_packages/lib/site-packages"
# A zip deploy larger than this is refused by the platform's deployment service (Kudu / One Deploy).
PACKAGE_LIMIT = 1024 * 1024 * 1024


class AzureFunctionsTarget:
    name = "azure"
    kind = "zip"
    handler = "function_app.app"
    glibc_minor = 28  # Azure's Python workers are Debian bookworm (glibc 2.36): manylinux_2_28 wheels
    verified_where = "on the local Functions host"
    standard_library_bundles = False
    python_containers = False

    def recorded_options(self, options) -> dict:
        return {"auth": options.auth or "function", "instance_memory_mb": options.instance_memory_mb or DEFAULT_INSTANCE_MEMORY_MB}
    handler_modules = ()

    def entry_modules(self, standard_library: bool, lambda_http: str) -> tuple[str, ...]:
        return ("azure_function",)

    def check_options(self, options) -> None:
        check_azure_options(options)

    def verify(self, bundle: Path, request: dict, expected, tolerance: float, forbidden: tuple[str, ...]):
        from mpack.packager.check.verify_functions import verify_functions_app

        return verify_functions_app(bundle, request, expected, tolerance, tuple(m for m in forbidden if m != "asyncio"))

    def runtime_packages(self, lambda_http: str) -> str:
        return "azure"

    def default_output(self, stem: str) -> Path:
        return Path("dist") / f"{stem}-azure.zip"

    def entries(self, runtime_site: Path, files: list, modules: frozenset[str], standard_library: bool, workdir: Path, precompile) -> list[BundleEntry]:
        code = handler_code(workdir / "code", modules, precompile=False)
        templates = package_dir("mpack.templates") / "azure"
        shutil.copyfile(templates / "function_app.py", code / "function_app.py")
        precompile_code(code, precompile)
        requirements = "# pre-installed in .python_packages/lib/site-packages by mpack (deploy with remote build off)\n" + "".join(f"{p}\n" for p in installed_distributions(runtime_site))
        return [
            *tree_entries(runtime_site, prefix=SITE_PACKAGES + "/"),
            *tree_entries(code),
            BundleEntry("host.json", data=(templates / "host.json").read_bytes()),
            BundleEntry("requirements.txt", data=requirements.encode()),
            *(BundleEntry(file.name, data=file.data) for file in files),
        ]

    def check_limits(self, entries: list[BundleEntry]) -> None:
        unzipped = sum(e.size for e in entries)
        if unzipped > PACKAGE_LIMIT:
            raise MpackError(
                f"bundle is {unzipped / 2**20:.0f} MB unzipped, over the 1 GB a Functions zip deployment takes",
                "serve a model this large from an image (--target container) on Azure Container Apps",
            )

    def warnings(self, zipped_bytes: int) -> list[str]:
        return []


def installed_distributions(site: Path) -> list[str]:
    """``name==version`` of every distribution in a site-packages folder (from its dist-info)."""
    pins = []
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        pins.append(f"{name.replace('_', '-').lower()}=={version}")
    return pins


AUTH_LEVELS = ("anonymous", "function", "admin")


def check_azure_options(options) -> None:
    if options.auth is not None and options.auth not in AUTH_LEVELS:
        raise MpackError(f"--auth {options.auth} is not an auth level", f"choose one of {', '.join(AUTH_LEVELS)}")
    if options.instance_memory_mb is not None and options.instance_memory_mb not in INSTANCE_MEMORY_MB:
        raise MpackError(
            f"--instance-memory {options.instance_memory_mb} is not a Flex Consumption instance size",
            f"choose one of {', '.join(map(str, INSTANCE_MEMORY_MB))} (MB)",
        )
    if options.lambda_http != DIRECT_HTTP:
        raise MpackError("--lambda-http applies to Lambda targets", "drop --lambda-http for --target azure")
