"""A bundle made ready to run locally: unpacked read-only (as Lambda's /var/task), its manifest read,
and refused early when it was built for another Python or architecture than this machine's.

Zips are unpacked once per content (keyed by their sha256) into the cache, so a second
``mpack invoke`` of the same bundle starts as fast as Lambda's warm code cache.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import stat
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from mpack.handlers.manifest import MANIFEST_NAME, Manifest, ManifestError
from mpack.infra.errors import MpackError

KEEP_UNPACKED = 8
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class LocalBundle:
    task_root: Path  # on this machine, or inside the image
    manifest: dict | None  # None for a Lambda zip mpack did not build (then --handler is needed)
    image: str | None = None  # a Lambda image: its runtime runs in containers
    runtime_dir: Path | None = None  # the runtime interface client's folder inside the image

    @property
    def handler(self) -> str | None:
        return (self.manifest or {}).get("handler")

    @property
    def model_name(self) -> str | None:
        return (self.manifest or {}).get("model", {}).get("name")

    @property
    def input_example(self) -> dict | None:
        return (self.manifest or {}).get("input_example")


def open_bundle(path: Path, cache_root: Path, other_python_ok: bool = False) -> LocalBundle:
    """The unpacked bundle; one for another Python or architecture is refused unless the caller
    runs it in a container of that Python (``other_python_ok``: see ``foreign_runtime``)."""
    if not path.exists():
        raise MpackError(f"bundle {path} does not exist", "build one with: mpack build --model models:/NAME@ALIAS")
    root = path if path.is_dir() else _unpacked(path, cache_root / "bundles")
    manifest = None
    if (root / MANIFEST_NAME).exists():
        manifest = served_manifest((root / MANIFEST_NAME).read_bytes(), f"the manifest {MANIFEST_NAME} in {path}")
        if not (other_python_ok and foreign_runtime(manifest)):
            check_compatible(manifest, path)
    return LocalBundle(root, manifest)


def served_manifest(data: bytes, where: str) -> dict:
    """The manifest's first model as the bundle's scoring core reads it (schema 1 and 2 alike); one
    this mpack cannot read is a clean error."""
    try:
        return Manifest.from_bytes(data, where).served()
    except ManifestError as exc:
        raise MpackError(str(exc), "rebuild the bundle with mpack build") from None


def foreign_runtime(manifest: dict | None) -> tuple[str, str] | None:
    """(python, arch) of a bundle built for another Python or architecture than this machine's."""
    runtime = (manifest or {}).get("runtime", {})
    wanted_python, wanted_arch = runtime.get("python"), runtime.get("arch")
    here_python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    here_arch = _ARCH.get(platform.machine().lower(), platform.machine())
    if (wanted_python and wanted_python != here_python) or (wanted_arch and wanted_arch != here_arch):
        return wanted_python or here_python, wanted_arch or here_arch
    return None


def bundle_target(path: Path) -> str | None:
    """The target a bundle (zip or folder) was built for, read from its manifest without unpacking
    it; None when there is no readable manifest (the caller's own checks then say what is wrong)."""
    try:
        if path.is_dir():
            data = (path / MANIFEST_NAME).read_bytes()
        else:
            with zipfile.ZipFile(path) as archive:
                data = archive.read(MANIFEST_NAME)
        return Manifest.from_bytes(data).target
    except (OSError, KeyError, ManifestError, zipfile.BadZipFile, zlib.error, EOFError):
        return None


def check_compatible(manifest: dict, path: Path) -> None:
    """The bundle's native wheels must match this interpreter and CPU to run in a local process."""
    runtime = manifest.get("runtime", {})
    wanted_python, wanted_arch = runtime.get("python"), runtime.get("arch")
    here_python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    here_arch = _ARCH.get(platform.machine().lower(), platform.machine())
    if (wanted_python and wanted_python != here_python) or (wanted_arch and wanted_arch != here_arch):
        raise MpackError(
            f"{path} is built for Python {wanted_python} on {wanted_arch}, but this machine runs Python {here_python} on {here_arch}",
            f"rebuild it with --python {here_python} --arch {here_arch} to test it here" + ("" if manifest.get("target") == "azure" else " (or build --target lambda-image to run it in a container)"),
        )


def _unpacked(zip_path: Path, folder: Path) -> Path:
    digest = _sha256(zip_path)
    target = folder / digest[:24]
    if target.exists():
        os.utime(target)  # most recently used: kept by the pruning below
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{digest[:24]}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(partial)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if zipfile.is_zipfile(zip_path):
            raise MpackError(f"{zip_path} is a corrupt zip ({exc})", "rebuild it with mpack build, or copy it again") from None
        raise MpackError(f"{zip_path} is not a zip file (or it is truncated)", "pass a bundle built by mpack build, or its unpacked folder") from None
    _make_read_only(partial)
    try:
        partial.rename(target)
    except OSError:  # another process unpacked it first
        _remove(partial)
    _prune(folder)
    return target


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _make_read_only(root: Path) -> None:
    """Lambda's code folder is read-only; so is ours (root can still write: documented)."""
    for folder, dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (os.stat(os.path.join(folder, name)).st_mode & 0o111))
    for folder, dirs, _ in os.walk(root, topdown=False):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o555)
    os.chmod(root, 0o555)


def _remove(root: Path) -> None:
    for folder, dirs, _ in os.walk(root):
        os.chmod(folder, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def _prune(folder: Path) -> None:
    unpacked = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in unpacked[KEEP_UNPACKED:]:
        _remove(old)


def open_image(reference: str, client) -> LocalBundle:
    """A Lambda image built by mpack (``--target lambda-image``): its manifest, read from the image."""
    import io
    import tarfile

    image = lambda_image(client, reference)
    task_root = Path((image.attrs["Config"].get("WorkingDir") or "/var/task"))
    container = client.containers.create(reference, entrypoint=["true"])
    try:
        stream, _ = container.get_archive(str(task_root / MANIFEST_NAME))
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            manifest = served_manifest(archive.extractfile(MANIFEST_NAME).read(), f"{reference}:{task_root / MANIFEST_NAME}")
    finally:
        container.remove(force=True)
    runtime = next((v.split("=", 1)[1] for v in image.attrs["Config"].get("Env") or () if v.startswith("LAMBDA_RUNTIME_DIR=")), None)
    return LocalBundle(task_root, manifest, image=reference, runtime_dir=Path(runtime) if runtime else Path("/var/runtime"))


def lambda_image(client, reference: str):
    """The local docker image ``reference``, refused unless mpack built it with --target lambda-image."""
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(reference)
    except ImageNotFound:
        raise MpackError(f"{reference} is neither a bundle file nor an image on this machine", "build one with mpack build --target lambda (zip) or --target lambda-image") from None
    labels = image.attrs["Config"].get("Labels") or {}
    if labels.get("io.mpack.target") != "lambda-image":
        raise MpackError(
            f"image {reference} is not a Lambda image built by mpack (target {labels.get('io.mpack.target')!r})", "run HTTP images with docker run; build Lambda images with --target lambda-image"
        )
    return image
