"""What an image says about itself: OCI annotations, the model's identity and the runtime's versions."""

from __future__ import annotations

COMPONENT_NAMES = {"base": "base image", "runtime": "Lambda runtime client", "deps": "Python libraries", "cuda": "CUDA libraries", "model": "model", "app": "handler code"}


def image_labels(manifest: dict, target: str) -> dict:
    """OCI annotations plus what identifies the model (its sha256 and source) and mpack."""
    model = manifest["model"]
    return {
        "org.opencontainers.image.title": model["name"],
        "org.opencontainers.image.version": str(model["version"]),
        "org.opencontainers.image.description": f"{model['name']} {model['version']} ({model['flavor']}) served by mpack ({target})",
        "org.opencontainers.image.source": model["source"],
        "org.opencontainers.image.vendor": "mpack",
        "io.mpack.model.sha256": model["sha256"],
        "io.mpack.model.source": model["source"],
        "io.mpack.version": str(manifest["mpack_version"]),
        "io.mpack.target": target,
        **_runtime_labels(manifest["runtime"]),
        **({"io.mpack.precision": manifest["build"]["precision"]} if manifest.get("build", {}).get("precision") else {}),
    }


def _runtime_labels(runtime: dict) -> dict:
    """The runtime libraries' versions; for GPU images the onnxruntime and CUDA majors pinned together."""
    labels = {f"io.mpack.{name}": str(runtime[name]) for name in ("python", "onnxruntime", "cuda") if runtime.get(name)}
    if runtime.get("cuda"):
        labels["io.mpack.onnxruntime-gpu"] = f"{runtime['onnxruntime']} (CUDA {runtime['cuda']})"
    return labels
