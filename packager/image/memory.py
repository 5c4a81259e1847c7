"""How much memory an HTTP image uses once serving: the figure Kubernetes resource requests are
derived from (``mpack export IMAGE --format k8s|knative|kserve``).

The image is started here (as the build's verification starts it), its input example is answered,
and the container's memory is read from the engine (cgroup usage: the interpreter, the libraries,
the model's session and the buffers one request used). A gpu image is run with MPACK_REQUIRE_GPU=0
on a machine without a GPU; its CUDA context's host memory is then not in the figure.
"""

from __future__ import annotations

import io
import tarfile

from mpack.infra.errors import MpackError
from mpack.packager.check.image_verify import first_answer, published_url

MANIFEST_IN_IMAGE = "/opt/mpack/model/mpack.json"


def image_manifest(client, tag: str) -> dict:
    """The bundle's mpack.json as the image holds it: its first model's served view."""
    from mpack.infra.docker_engine import image_exists
    from mpack.infra.local.local_bundle import served_manifest

    if not image_exists(client, tag):
        raise MpackError(f"the image {tag} is not on this machine", "build it with mpack build --target container|gpu (or docker pull it) first")
    container = client.containers.create(tag)
    try:
        stream, _ = container.get_archive(MANIFEST_IN_IMAGE)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            data = archive.extractfile(archive.getmembers()[0]).read()
    except Exception as exc:  # noqa: BLE001 - docker's NotFound and tar errors, translated here
        raise MpackError(f"{tag} holds no {MANIFEST_IN_IMAGE}: {str(exc)[:200]}", "export manifests for images built with --target container or gpu") from None
    finally:
        container.remove(force=True)
    return served_manifest(data, f"{tag}:{MANIFEST_IN_IMAGE}")


def serving_memory_mib(client, tag: str, manifest: dict, port: int = 8080) -> float:
    """The running image's memory after it answered its input example, in MiB."""
    request = manifest.get("input_example")
    if not request:
        raise MpackError(f"{tag} has no input example to measure its memory with", "pass --memory-mib with the memory the model needs")
    container = client.containers.run(tag, detach=True, ports={f"{port}/tcp": ("127.0.0.1", None)}, environment={"MPACK_REQUIRE_GPU": "0"})
    try:
        first_answer(container, published_url(container, port), request)
        stats = container.stats(stream=False)["memory_stats"]
    finally:
        container.remove(force=True)
    used = stats.get("max_usage") or stats.get("usage")
    if not used:
        raise MpackError(f"the engine reported no memory use for {tag}", "pass --memory-mib with the memory the model needs")
    return used / 2**20
