"""Load the bundle once per process: manifest, model integrity check, ONNX Runtime session.

The graph was optimized at build time, so the session is created with optimizations off; threads
follow the platform's CPU share (on Lambda, 1,769 MB of memory is one vCPU) and never spin.
"""

from __future__ import annotations

import os

from .errors import ModelLoadError
from .manifest import MANIFEST_NAME, Manifest

LAMBDA_MB_PER_VCPU = 1769
LAMBDA_MAX_VCPUS = 6


class LoadedModel:
    """The manifest and the session (onnxruntime, native or micro). Paths are plain strings here:
    ``pathlib`` and ``dataclasses`` cost ~30 ms of a micro bundle's cold start."""

    __slots__ = ("manifest", "session", "providers")

    def __init__(self, manifest: dict, session: object, providers=None) -> None:
        self.manifest, self.session = manifest, session
        self.providers = providers  # gpu images: gpu_session.ProviderReport (what really runs, and why not CUDA)


def bundle_root() -> str:
    """The folder holding mpack.json: MPACK_BUNDLE_ROOT, else Lambda's task root, else beside us."""
    explicit = os.environ.get("MPACK_BUNDLE_ROOT") or os.environ.get("LAMBDA_TASK_ROOT")
    if explicit:
        return explicit
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def read_manifest(root) -> dict:
    """The bundle's manifest, checked field by field (``Manifest``), as the plain document the
    scoring core reads: its first model's served view (schema 1 bundles read the same way)."""
    path = os.path.join(root, MANIFEST_NAME)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ModelLoadError(f"bundle manifest {path} is missing; was this bundle built by mpack?") from None
    return Manifest.from_bytes(data, f"bundle manifest {path}").served()


def _sha256():
    """The interpreter's own SHA-256 (no OpenSSL load: ~5 ms of a cold start), else hashlib's."""
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11
        except ImportError:
            from hashlib import sha256
    return sha256()


def verify_model_file(path, expected_sha256: str) -> None:
    digest = _sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise ModelLoadError(f"model file {path} named in the manifest is missing from the bundle") from None
    actual = digest.hexdigest()
    if actual != expected_sha256:
        raise ModelLoadError(f"model file {os.path.basename(path)} is corrupt or was altered: sha256 {actual} does not match the manifest's {expected_sha256}; rebuild the bundle")


def platform_threads() -> int:
    """Threads for ONNX Runtime: MPACK_THREADS, else Lambda's vCPU share, else the CPUs we may use."""
    explicit = os.environ.get("MPACK_THREADS")
    if explicit:
        return max(1, int(explicit))
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory:
        return max(1, min(LAMBDA_MAX_VCPUS, round(int(memory) / LAMBDA_MB_PER_VCPU)))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def create_session(model, threads: int, providers=("CPUExecutionProvider",), optimize: bool = False):
    """An ONNX Runtime session on an already-optimized graph (a file path or the graph's bytes).
    ``optimize``: fuse at load for the providers given (a GPU graph ships provider-neutral)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        name = "the model" if isinstance(model, bytes) else os.path.basename(model)
        raise ModelLoadError(f"ONNX Runtime cannot load {name}: {exc}") from None


def load(root=None) -> LoadedModel:
    root = os.fspath(root or bundle_root())
    manifest = read_manifest(root)
    model = manifest["model"]
    model_path = os.path.join(root, model["file"])
    verify_model_file(model_path, model["sha256"])
    if manifest.get("micro"):  # --runtime micro: compiled to standard-library Python
        from .micro_runtime import load_micro

        return LoadedModel(manifest=manifest, session=load_micro(root, manifest))
    if manifest.get("native"):  # --runtime native: the model's own framework
        from .native_model import model_session

        return LoadedModel(manifest=manifest, session=model_session(manifest, model_path, platform_threads()))
    if manifest["runtime"].get("kind") == "gpu":  # --target gpu: CUDA first, and what really runs
        from .gpu_session import cuda_session

        session, providers = cuda_session(lambda chosen: create_session(model_path, platform_threads(), chosen, optimize=True), str(manifest["runtime"].get("cuda")))
        return LoadedModel(manifest=manifest, session=session, providers=providers)
    return LoadedModel(manifest=manifest, session=create_session(model_path, platform_threads()))
