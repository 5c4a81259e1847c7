"""The Docker engine, reached through the docker SDK; its failures become MpackErrors that say
how to get an engine running."""

from __future__ import annotations

from mpack.infra.errors import MpackError

START_HINT = "start the Docker engine (on Debian: sudo apt-get install -y docker.io && sudo dockerd &), or set DOCKER_HOST"


def connect():
    """A docker client that has answered a ping."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as exc:
        raise MpackError(f"the Docker engine is not reachable: {_reason(exc)}", START_HINT) from None
    return client


def image_exists(client, reference: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(reference)
        return True
    except ImageNotFound:
        return False


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "FileNotFoundError" in text or "No such file" in text or "Connection refused" in text:
        return "no engine answers at its socket"
    return text.splitlines()[0][:300] if text else type(exc).__name__
