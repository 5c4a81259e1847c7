"""Which registered model version a published Lambda version serves, read back from AWS.

Every version mpack publishes carries ``mpack: NAME VERSION (SOURCE)`` in its description (immutable once
published) and Lambda's own CodeSha256 of its code, so a release sync or the MLflow plugin learns what
serves from the function itself — a CI runner starts with no local state."""

from __future__ import annotations

import re
from dataclasses import dataclass

DESCRIPTION_LIMIT = 256  # Lambda's, for function, version and alias descriptions
ALIAS_SUFFIX_ROOM = 48  # "; previous=NNNNN" and a canary's "; since=EPOCH"
RECORD = re.compile(r"^mpack: (?P<name>.+) (?P<version>\S+) \((?P<source>.*?)\)(?:;.*)?$")


@dataclass(frozen=True)
class ServedModel:
    name: str  # the registered model
    version: str  # its registry version
    source: str  # what was asked to build (models:/fraud@champion)
    lambda_version: str
    code_sha256: str

    @property
    def label(self) -> str:
        return f"{self.name} version {self.version}"


def model_record(name: str, version: str, source: str) -> str:
    """``NAME VERSION (SOURCE)``, the source shortened so that ``mpack: `` and the alias's suffix fit 256 characters."""
    room = DESCRIPTION_LIMIT - len("mpack: ") - ALIAS_SUFFIX_ROOM - len(f"{name} {version} ()")
    if len(source) > room:
        source = source[: max(room - 1, 0)] + "…"
    return f"{name} {version} ({source})"


def parse_record(description: str) -> tuple[str, str, str] | None:
    """(name, version, source) from a description mpack wrote, else None."""
    match = RECORD.match(description or "")
    return (match["name"], match["version"], match["source"]) if match else None


def published_models(descriptions: dict, code_sha256: dict) -> dict[str, ServedModel]:
    """Lambda version -> the model it serves, for every published version mpack described."""
    served = {}
    for version, description in descriptions.items():
        record = parse_record(description) if version != "$LATEST" else None
        if record:
            served[version] = ServedModel(*record, lambda_version=version, code_sha256=code_sha256.get(version, ""))
    return served
