"""The one way the build side scores with a model: the bundle's own protocol core over the bundle's
own session (ONNX Runtime or the native model), so every check - parity, the expected answer of the
bundle and image verifications - runs exactly the code the deployed function runs."""

from __future__ import annotations

from mpack.handlers.native_model import model_session
from mpack.handlers.protocol import ScoringService


def scoring_service(manifest: dict, model_bytes: bytes) -> ScoringService:
    """A ScoringService for a (possibly partial) manifest and the model file's bytes, on one thread
    (for --runtime micro, the bytes are the compiled module's text)."""
    if manifest.get("micro"):
        from mpack.handlers.micro_runtime import session_from_source

        return ScoringService(manifest, session_from_source(model_bytes, manifest["micro"]))
    return ScoringService(manifest, model_session(manifest, model_bytes, threads=1))
