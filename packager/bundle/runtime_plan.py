"""Which runtime libraries a bundle ships, for a target Python and architecture.

Lambda's Python 3.8-3.11 runtimes run on glibc 2.26; 3.12+ on glibc 2.34. The newest onnxruntime
with wheels for glibc 2.26 is 1.16.3 (built against numpy 1.x), so bundles for those runtimes
ship it, and the ONNX graph is written in the opsets that release reads. Newer runtimes ship the
onnxruntime and numpy versions installed here, the ones the parity gate ran.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from importlib.metadata import version

from mpack.infra.errors import MpackError

PYTHONS = ("3.11", "3.12", "3.13", "3.14")  # Lambda's current Pythons; the newest is the Lambda zip default
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}
GLIBC = {"3.11": 26, "3.12": 34, "3.13": 34, "3.14": 34}
LEGACY_GLIBC_RUNTIME = {"onnxruntime": "1.16.3", "numpy": "1.26.4", "opset": {"": 19, "ai.onnx.ml": 3}}
DIRECT_HTTP = "direct"  # the default: mpack's handler answers HTTP events itself
LAMBDA_HTTP_MODES = (DIRECT_HTTP, "asgi")  # what --lambda-http accepts: how a Lambda answers HTTP events (its own words: --runtime has "native")
# Libraries the handler itself imports, per package set: the Lambda HTTP modes, and the sets other
# targets ship (a target names its set; their own dependencies are resolved by pip).
HANDLER_PACKAGES = {
    DIRECT_HTTP: ("aws-lambda-powertools",),
    "asgi": ("aws-lambda-powertools", "mangum", "starlette"),
    "container": ("starlette", "uvicorn"),
    "azure": ("azure-functions",),  # the Functions worker brings its own copy; the app's decorators need it
    "gpu": ("starlette", "uvicorn"),  # the HTTP server image, with onnxruntime-gpu and its CUDA wheels
}
FIRST_CUDA_13_ONNXRUNTIME = (1, 27)  # onnxruntime-gpu's PyPI wheels: CUDA 12 up to 1.26, CUDA 13 from 1.27
IMAGE_GLIBC = 28  # Debian bookworm (python:3.x-slim) and newer: manylinux_2_28 wheels


@dataclass(frozen=True)
class RuntimePlan:
    python: str  # "3.11"
    arch: str  # "x86_64" | "arm64"
    onnxruntime: str
    numpy: str
    opset: dict | None  # target opsets for conversion; None: the converter's newest
    handler_packages: tuple[str, ...]  # pinned "name==version"
    glibc_minor: int = 26
    model_packages: tuple[str, ...] = ()  # --runtime native: the model's own requirements (no onnxruntime)
    cuda: str = ""  # --target gpu: the CUDA major onnxruntime-gpu is built for ("13"); its wheels ship with it
    kind: str = "onnx"  # onnx | gpu (onnxruntime-gpu) | native (the model's own libraries) | micro (none): set by the plan functions, never guessed

    @property
    def glibc(self) -> str:
        return f"2.{self.glibc_minor}"

    @property
    def platforms(self) -> tuple[str, ...]:
        machine = ARCHES[self.arch]
        tags = [f"manylinux_2_{minor}_{machine}" for minor in range(self.glibc_minor, 16, -1)]
        return (*tags, f"manylinux2014_{machine}")

    @property
    def matches_host(self) -> bool:
        """Whether this interpreter can import the bundle (for .pyc and the verification run)."""
        return self.python == host_python() and self.arch == host_arch()

    def describe(self) -> dict:
        """The manifest's ``runtime`` (an onnxruntime bundle's has no ``kind``: bundles have always read so)."""
        described = {
            "micro": lambda: {"kind": "micro"},
            "native": lambda: {"glibc": self.glibc, "kind": "native", "packages": list(self.model_packages)},
            "gpu": lambda: {"glibc": self.glibc, "kind": "gpu", "onnxruntime": self.onnxruntime, "numpy": self.numpy, "cuda": self.cuda},
            "onnx": lambda: {"glibc": self.glibc, "onnxruntime": self.onnxruntime, "numpy": self.numpy},
        }
        return {"python": self.python, "arch": self.arch, **described[self.kind]()}


def host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def host_arch() -> str:
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else machine


def check_lambda_http(mode: str) -> None:
    """Callers other than the command line (which offers the modes as choices) get the same answer."""
    if mode not in LAMBDA_HTTP_MODES:
        raise MpackError(f"--lambda-http {mode} is not a mode", f"choose one of {', '.join(LAMBDA_HTTP_MODES)}")


def plan_runtime(python: str | None, arch: str | None, package_set: str, glibc_minor: int | None = None) -> RuntimePlan:
    """``package_set``: the target's key of HANDLER_PACKAGES (``Target.runtime_packages``: the Lambda
    targets name their --lambda-http mode, checked before); ``glibc_minor``: the target's C library (images choose theirs); default Lambda's for ``python``."""
    python = python or host_python()
    arch = arch or host_arch()
    if python not in PYTHONS:
        raise MpackError(f"--python {python} is not a supported target", f"choose one of {', '.join(PYTHONS)}")
    if arch not in ARCHES:
        raise MpackError(f"--arch {arch} is not a supported target", f"choose one of {', '.join(ARCHES)}")
    if package_set not in HANDLER_PACKAGES:
        raise ValueError(f"no handler package set {package_set!r}")  # a target's mistake, not a user's
    packages = tuple(f"{name}=={version(name)}" for name in HANDLER_PACKAGES[package_set])
    glibc = glibc_minor or GLIBC[python]
    if glibc < 28:
        legacy = LEGACY_GLIBC_RUNTIME
        return RuntimePlan(python, arch, legacy["onnxruntime"], legacy["numpy"], legacy["opset"], packages, glibc)
    onnxruntime = version("onnxruntime")
    if package_set == "gpu":
        onnxruntime = gpu_release(onnxruntime)
        return RuntimePlan(python, arch, onnxruntime, version("numpy"), None, packages, glibc, cuda=cuda_major(onnxruntime), kind="gpu")
    return RuntimePlan(python, arch, onnxruntime, version("numpy"), None, packages, glibc)


def gpu_release(cpu_version: str, available=None) -> str:
    """The onnxruntime-gpu release the image ships: the newest on the package index not newer than
    the onnxruntime the build converts and checks with (the GPU wheels trail the CPU ones). The
    image's verification then runs it against the same expected answers."""
    releases = available if available is not None else _index_versions("onnxruntime-gpu")
    wanted = _numeric(cpu_version)
    fitting = [release for release in releases if _numeric(release) <= wanted]
    if not fitting:
        raise MpackError(f"no onnxruntime-gpu release up to {cpu_version} is on the package index", "check the network to the index (or PIP_INDEX_URL), or install an older onnxruntime for the build")
    return max(fitting, key=_numeric)


def _numeric(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split(".")[:3] if part.isdigit())


def _index_versions(package: str) -> list[str]:
    import subprocess

    result = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.strip().startswith("Available versions:"):
            return [item.strip() for item in line.split(":", 1)[1].split(",") if item.strip()]
    detail = (result.stderr.strip().splitlines() or ["no answer"])[-1]
    raise MpackError(f"cannot list {package}'s releases on the package index: {detail}", "check the network to the index (or PIP_INDEX_URL)")


def cuda_major(onnxruntime: str) -> str:
    """The CUDA major onnxruntime-gpu's PyPI wheel of that version is built for: the two are pinned together."""
    return "13" if _numeric(onnxruntime)[:2] >= FIRST_CUDA_13_ONNXRUNTIME else "12"


def native_plan(plan: RuntimePlan, requirements: list[str]) -> RuntimePlan:
    """The same target, shipping the model's own libraries instead of onnxruntime."""
    from dataclasses import replace

    return replace(plan, onnxruntime="", opset=None, model_packages=tuple(requirements), kind="native")


def micro_plan(plan: RuntimePlan) -> RuntimePlan:
    """The same target, shipping no libraries at all (the compiled model and the standard library)."""
    from dataclasses import replace

    return replace(plan, onnxruntime="", numpy="", opset=None, handler_packages=(), kind="micro")
