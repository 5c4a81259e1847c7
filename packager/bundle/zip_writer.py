"""A build plan's file list and the deterministic zip written from it.

Same inputs, same bytes: entries sorted, fixed timestamps (1980-01-01) and modes (0644), no
directory entries, no host paths. The pipeline writes it to a partial file beside its destination,
verifies it, and only then renames it into place: a failed build leaves no partial file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import zipfile
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mpack.infra.errors import MpackError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16
COMPRESSION_LEVEL = 9


@dataclass(frozen=True)
class BundleEntry:
    name: str  # path inside the bundle, POSIX
    path: Path | None = None  # file on disk...
    data: bytes | None = None  # ...or bytes

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


@dataclass(frozen=True)
class ZipResult:
    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    contributors: tuple[dict, ...]  # largest top-level parts: name, unzipped, zipped


def tree_entries(folder: Path, prefix: str = "") -> list[BundleEntry]:
    return [BundleEntry(prefix + p.relative_to(folder).as_posix(), path=p) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".mpack")]


def write_zip(entries: list[BundleEntry], destination: Path, top: int = 8) -> ZipResult:
    duplicates = [name for name, count in Counter(e.name for e in entries).items() if count > 1]
    if duplicates:
        raise ValueError(f"bundle entries collide: {sorted(duplicates)[:5]}")
    unzipped = defaultdict(int)
    zipped = defaultdict(int)
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSION_LEVEL) as archive:
        for entry in sorted(entries, key=lambda e: e.name):
            info = zipfile.ZipInfo(entry.name, date_time=FIXED_TIME)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode bits are honoured
            archive.writestr(info, entry.read(), compresslevel=COMPRESSION_LEVEL)
            part = contributor(entry.name)
            unzipped[part] += info.file_size
            zipped[part] += info.compress_size
    digest = hashlib.sha256(destination.read_bytes()).hexdigest()
    contributors = sorted(({"name": k, "unzipped": unzipped[k], "zipped": zipped[k]} for k in unzipped), key=lambda c: -c["unzipped"])
    return ZipResult(destination, digest, destination.stat().st_size, sum(unzipped.values()), tuple(contributors[:top]))


def check_destination(destination: Path) -> None:
    """Refuse an --output that can never be written, before anything is built."""
    if destination.is_dir():
        raise MpackError(f"--output {destination} is a folder", f"name the file to write, e.g. {destination / 'model.zip'}")
    ancestor = destination.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise MpackError(f"--output {destination}: {ancestor} is a file, not a folder", "choose a path whose folders are folders")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise MpackError(f"--output {destination}: no permission to write in {ancestor}", "choose a folder you can write to")


@contextmanager
def writing(destination: Path):
    """OSErrors while writing the artifact as a clean error naming the file (a full disk above all)."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise MpackError(f"no space left on the device holding {destination}", "free some space (or choose another --output) and build again; nothing was published") from None
        raise MpackError(f"cannot write {destination}: {exc.strerror or exc}", "choose another --output; nothing was published") from None


def partial_path(destination: Path) -> Path:
    """Where an artifact is written until it is verified (same folder, so the rename is atomic)."""
    return destination.with_name(f".{destination.name}.{os.getpid()}.partial")


def publish(partial: Path, destination: Path) -> None:
    os.replace(partial, destination)


def contributor(name: str) -> str:
    """The part of the bundle a file belongs to: its top-level package (dist-info counted with it)."""
    if "site-packages/" in name:  # a bundle that keeps its libraries in a site folder (Azure's .python_packages)
        name = name.split("site-packages/", 1)[1]
    head, _, rest = name.partition("/")
    if head == "__pycache__":  # compiled top-level module: count it with its source
        return rest.split(".", 1)[0].lower()
    if head.endswith(".dist-info"):
        return head.split("-", 1)[0].lower()
    if head.endswith(".libs"):
        return head[: -len(".libs")].lower()
    return head.removesuffix(".py").lower()
