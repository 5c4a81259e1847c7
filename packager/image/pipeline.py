"""The image half of the build: after the model, its parity and the runtime libraries are ready,
an image target gets its image built, run on the input example, and pushed when asked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mpack.infra.docker_engine import connect
from mpack.packager.bundle.manifest import manifest_bytes
from mpack.packager.bundle.runtime_plan import host_arch
from mpack.packager.check.verify import Verification, skipped
from mpack.packager.image.build import BuiltImage, build_image


def build_and_verify_image(target, options, resolved, manifest: dict, optimized: bytes, installed, runtime, request: dict, work: Path, stage, progress) -> tuple[BuiltImage, Verification]:
    client = connect()
    base = options.base_image or target.default_base(runtime.python)
    tag = options.tag or target.default_tag(resolved.name, str(resolved.version))
    with stage("image"):
        recipe = target.recipe(base, installed.site, optimized, manifest_bytes(manifest), work, installed.precompiled, image_labels(manifest, target.name))
        image = build_image(client, recipe, tag, f"linux/{'amd64' if runtime.arch == 'x86_64' else 'arm64'}", progress.note)
        progress.note(f"{image.tag}: {image.size_bytes / 2**20:.0f} MB ({(image.size_bytes - image.base_size_bytes) / 2**20:.0f} MB above {base})")
        progress.note("by component: " + ", ".join(f"{COMPONENT_NAMES.get(name, name)} {size / 2**20:.1f} MB" for name, size in image.components.items()))
    with stage("verify"):
        verification = _verify(client, target, image, recipe, manifest, optimized, request, options, runtime, progress)
    if options.push:
        from mpack.packager.image.push import push_image

        with stage("push"):
            pushed = push_image(client, image.tag, progress.note)
            progress.note(f"pushed {pushed}")
        image = dataclasses.replace(image, pushed=pushed)
    return image, verification


def _verify(client, target, image: BuiltImage, recipe, manifest: dict, optimized: bytes, request: dict, options, runtime, progress) -> Verification:
    from mpack.packager.check.image_verify import verify_http_image, verify_lambda_image
    from mpack.packager.check.scoring import scoring_service

    if not options.verify:
        return skipped("disabled with --no-verify")
    if runtime.arch != host_arch():
        reason = f"the image is for {runtime.arch}; this machine cannot run it"
        progress.warn(reason)
        return skipped(reason)
    expected = scoring_service(manifest, optimized).score_document(request).body["predictions"]
    tolerance = max(options.tolerance, 1e-6)
    if target.name == "lambda-image":
        verification = verify_lambda_image(client, image.tag, manifest, request, expected, tolerance)
        progress.note(f"answered the input example on the local Lambda platform (Init Duration {verification.init_seconds * 1000:.0f} ms)")
    else:
        environment = {}
        if manifest["runtime"].get("kind") == "gpu":  # no GPU is handed to the verifying container: the CPU answers, said so
            environment = {"MPACK_REQUIRE_GPU": "0"}
            progress.warn("the gpu image was verified on the CPU (MPACK_REQUIRE_GPU=0): the CUDA provider is not exercised by the build")
        verification = verify_http_image(client, image.tag, recipe.expose or 8080, request, expected, tolerance, environment)
        progress.note(f"the image answered the input example {verification.init_seconds * 1000:.0f} ms after docker run")
    return verification


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
