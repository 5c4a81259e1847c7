"""What ``mpack build`` says when it is done (``--json``): one report for zips and images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BuildReport:
    artifact: Path | str  # the zip, or the image tag
    sha256: str  # the zip's, or the image id
    target: str
    handler: str
    manifest: dict
    parity: dict
    verification: dict
    dependencies: dict
    zipped_bytes: int = 0
    unzipped_bytes: int = 0  # images: the image's size
    contributors: tuple = ()
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    image: dict | None = None  # image targets: tag, id, sizes, layer digests
    runtime_choice: dict | None = None  # what was weighed (runtimes, precisions), measured, and why

    @classmethod
    def of(cls, state) -> "BuildReport":
        unit, installed, packaged = state.unit, state.installed, state.packaged
        common = dict(
            target=state.target.name,
            handler=state.target.handler,
            manifest=state.manifest,
            parity=unit.artifact.parity.to_dict(),
            verification=state.verification.to_dict(),
            dependencies={"cache_hit": installed.cache_hit, "cache_key": installed.key, "precompiled": installed.precompiled},
            timings=state.timings,
            warnings=state.warnings,
            runtime_choice=unit.choice,
        )
        image = getattr(packaged, "image", None)
        if image is not None:
            return cls(artifact=image.tag, sha256=image.image_id, unzipped_bytes=image.size_bytes, image=image.to_dict(), **common)
        written = packaged.written
        return cls(artifact=packaged.destination, sha256=written.sha256, zipped_bytes=written.zipped_bytes, unzipped_bytes=written.unzipped_bytes, contributors=written.contributors, **common)

    def to_dict(self) -> dict:
        artifact = {"image": self.image} if self.image else {"path": str(self.artifact), "sha256": self.sha256, "zipped_bytes": self.zipped_bytes, "unzipped_bytes": self.unzipped_bytes}
        return {
            "ok": True,
            "artifact": artifact,
            "size_report": {"top_contributors": list(self.contributors)},
            "target": self.target,
            "handler": self.handler,
            "model": {k: self.manifest["model"][k] for k in ("name", "version", "source", "flavor", "task", "sha256")},
            "runtime": self.manifest["runtime"],
            "parity": self.parity,
            "verification": self.verification,
            "dependencies": self.dependencies,
            "timings_s": self.timings,
            "warnings": self.warnings,
            "runtime_choice": self.runtime_choice,
        }
