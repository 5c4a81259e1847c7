"""The GPU image's session: CUDA first, and the truth about which provider really runs.

onnxruntime-gpu never fails when CUDA cannot be used: a missing CUDA or cuDNN library only logs a
line and the session quietly runs on the CPU, while ``get_available_providers()`` still lists CUDA.
Only ``session.get_providers()`` tells. When it does not start with CUDA, ``cuda_problem`` names why
— onnxruntime without a CUDA provider, the first CUDA/cuDNN library that cannot be loaded, or no
NVIDIA driver — and the server (``--require-gpu``, the gpu target's default) reports not ready
with that message instead of serving from the CPU.
"""

from __future__ import annotations

import ctypes
import os
import sys

CUDA = "CUDAExecutionProvider"
# The libraries onnxruntime-gpu's CUDA provider links, by CUDA major (the nvidia-*-cuNN wheels
# that onnxruntime-gpu's [cuda,cudnn] extras install), in the order worth reporting.
CUDA_LIBRARIES = {
    "12": ("libcudart.so.12", "libcublasLt.so.12", "libcublas.so.12", "libcufft.so.11", "libcurand.so.10", "libcudnn.so.9"),
    "13": ("libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcufft.so.12", "libcurand.so.10", "libcudnn.so.9"),
}
DRIVER_LIBRARY = "libcuda.so.1"  # comes from the host's driver (NVIDIA container toolkit, --gpus)


class ProviderReport:
    """What the session runs on; ``problem`` is None when CUDA is in use."""

    __slots__ = ("provider", "problem")

    def __init__(self, provider: str, problem: str | None) -> None:
        self.provider, self.problem = provider, problem


def cuda_session(create, cuda_major: str):
    """(session, ProviderReport): ``create(providers)`` builds the session; the CUDA libraries from
    the nvidia wheels are preloaded first where onnxruntime can (1.21+)."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None and CUDA in ort.get_available_providers():
        try:
            preload(cuda=True, cudnn=True, msvc=False)
        except Exception as error:  # noqa: BLE001 - a failed preload is diagnosed below, by library
            print(f"mpack: onnxruntime could not preload the CUDA libraries: {error}", file=sys.stderr)
    session = create([CUDA, "CPUExecutionProvider"])
    provider = session.get_providers()[0]
    return session, ProviderReport(provider, None if provider == CUDA else cuda_problem(ort.get_available_providers(), cuda_major))


def cuda_problem(available: list[str], cuda_major: str, loadable=None) -> str:
    """Why the session does not run on CUDA, naming the missing part."""
    loadable = loadable or _loadable
    if CUDA not in available:
        return "this onnxruntime has no CUDA execution provider: the image lacks onnxruntime-gpu (rebuild it with --target gpu)"
    missing = [name for name in CUDA_LIBRARIES.get(cuda_major, ()) if not loadable(name)]
    if missing:
        return f"CUDA {cuda_major} libraries cannot be loaded: {', '.join(missing)} (the image's nvidia-* wheels for CUDA {cuda_major} are missing or broken; rebuild it with --target gpu)"
    if not loadable(DRIVER_LIBRARY):
        return f"no NVIDIA driver: {DRIVER_LIBRARY} cannot be loaded (run the container with GPUs: docker run --gpus all, or nvidia.com/gpu resources on Kubernetes)"
    return "onnxruntime's CUDA provider failed to start although its libraries load (see onnxruntime's log above: a GPU too old for this CUDA, or out of memory)"


def provider_settings(report: ProviderReport | None, build: dict, environ=os.environ) -> dict:
    """The HTTP server's ``unavailable``/``provider`` for a loaded model, logged once at start: a
    GPU image off CUDA is unavailable under ``require_gpu`` (the build's, or MPACK_REQUIRE_GPU=0|1)."""
    if report is None:
        return {}
    required = environ.get("MPACK_REQUIRE_GPU", "1" if build.get("require_gpu", True) else "0") not in ("0", "false", "no")
    if report.problem is None:
        print(f"mpack: the model runs on {report.provider}", file=sys.stderr)
        return {"provider": report.provider}
    if required:
        reason = f"the model would run on {report.provider}, not CUDA: {report.problem}"
        print(f"mpack: NOT READY - {reason} (MPACK_REQUIRE_GPU=0 serves from the CPU)", file=sys.stderr)
        return {"provider": report.provider, "unavailable": reason}
    print(f"mpack: WARNING - serving from {report.provider} (MPACK_REQUIRE_GPU=0): {report.problem}", file=sys.stderr)
    return {"provider": report.provider}


def _loadable(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True
