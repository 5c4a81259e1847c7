"""``mpack base-image``: a Debian Python base image from Debian packages alone (debootstrap +
``docker import``), for air-gapped machines and for tests, where no registry can be pulled from.

Debian bookworm's python3 is 3.11, the same minor version as the default target, so runtime wheels
resolved for ``--python 3.11`` run in it. Building needs root (debootstrap) and takes about a minute;
an existing image with the tag is reused unless ``rebuild``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.docker_engine import connect, image_exists
from mpack.infra.errors import MpackError

DEFAULT_TAG = "mpack/python:3.11-bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PRUNED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")


@dataclass(frozen=True)
class BaseImage:
    tag: str
    image_id: str
    size_bytes: int
    reused: bool


def _script_for(suite: str) -> list[str]:
    """A Debian release newer than this debootstrap knows (forky on bookworm's) uses sid's script."""
    scripts = Path("/usr/share/debootstrap/scripts")
    if (scripts / suite).exists() or not (scripts / "sid").exists():
        return []
    return [str(scripts / "sid")]


def build_base_image(tag: str = DEFAULT_TAG, suite: str = "bookworm", mirror: str = DEFAULT_MIRROR, rebuild: bool = False, log=lambda text: None) -> BaseImage:
    client = connect()
    if image_exists(client, tag) and not rebuild:
        image = client.images.get(tag)
        return BaseImage(tag, image.id, image.attrs.get("Size", 0), True)
    if shutil.which("debootstrap") is None:
        raise MpackError("debootstrap is not installed", "install it: sudo apt-get install -y debootstrap")
    with tempfile.TemporaryDirectory(prefix="mpack-rootfs-") as folder:
        root = Path(folder) / "rootfs"
        log(f"debootstrap --variant=minbase --include=python3 {suite} ({mirror})")
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,ca-certificates", suite, str(root), mirror, *_script_for(suite)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            detail = ([line for line in (result.stderr + result.stdout).splitlines() if line.strip()] or ["no output"])[-1]
            hint = "debootstrap needs root" if "root" in detail.lower() else f"check that {mirror} is reachable (or pass --mirror)"
            raise MpackError(f"debootstrap of Debian {suite} failed: {detail}", hint)
        for relative in PRUNED:
            target = root / relative
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        log(f"docker import -> {tag}")
        repository, version = split_reference(tag)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            client.api.import_image_from_stream(tar.stdout, repository=repository, tag=version, changes=['CMD ["python3"]', "ENV LANG=C.UTF-8"])
        finally:
            tar.wait()
    image = client.images.get(tag)
    return BaseImage(tag, image.id, image.attrs.get("Size", 0), False)


def split_reference(reference: str) -> tuple[str, str]:
    """("registry:5000/name", "tag") from an image reference (the tag defaults to latest)."""
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:  # no tag, or the colon was a registry port
        return reference, "latest"
    return name, tag
