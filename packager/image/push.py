"""``--push``: the built image to any OCI registry its tag names (credentials from ``docker login``).
Returns the pushed digest, so deploys can refer to exactly this image."""

from __future__ import annotations

from mpack.infra.errors import MpackError
from mpack.packager.image.base_image import split_reference


def push_image(client, tag: str, log=lambda text: None) -> str:
    """``repository@sha256:...`` of the pushed image."""
    repository, version = split_reference(tag)
    if "/" not in repository or "." not in repository.split("/")[0] and ":" not in repository.split("/")[0] and repository.split("/")[0] != "localhost":
        raise MpackError(f"--push needs a tag that names a registry, not {tag!r}", "tag it like registry.example.com/team/model:1 or 127.0.0.1:5000/model:1 (--tag)")
    digest = None
    try:
        for event in client.images.push(repository, tag=version, stream=True, decode=True):
            if "error" in event:
                raise MpackError(f"pushing {tag} failed: {event['error'].strip()[:300]}", "check the registry address and `docker login` to it")
            digest = (event.get("aux") or {}).get("Digest", digest)
            if event.get("status") in ("Pushed", "Layer already exists"):
                log(f"{event.get('id', '')}: {event['status']}")
    except MpackError:
        raise
    except Exception as exc:  # noqa: BLE001 - the engine's or the connection's failure, with context
        raise MpackError(f"pushing {tag} failed: {exc}", "check the registry address and `docker login` to it") from None
    if not digest:
        raise MpackError(f"the registry did not report a digest for {tag}", "push it again; check the registry's logs")
    return f"{repository}@{digest}"
