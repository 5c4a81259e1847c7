"""Deploy settings from a file, for teams that keep them beside the code: ``mpack.toml`` (a
``[deploy]`` table) or ``pyproject.toml`` (``[tool.mpack.deploy]``). Flags given on the command
line win; unknown keys are refused so a typo never silently deploys with a default."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mpack.infra.errors import MpackError

KEYS = ("function", "alias", "canary", "memory", "timeout", "role", "env", "reserved", "provisioned", "function-url", "bucket", "repository", "region", "smoke-test")


def file_settings(folder: Path) -> tuple[dict, Path | None]:
    """(settings with option names as keys, the file they came from)."""
    for name, table in (("mpack.toml", ("deploy",)), ("pyproject.toml", ("tool", "mpack", "deploy"))):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise MpackError(f"{path} is not valid TOML: {exc}", "fix the file, or remove it") from None
        for key in table:
            data = data.get(key) if isinstance(data, dict) else None
        if data:
            unknown = sorted(set(data) - set(KEYS))
            if unknown:
                raise MpackError(f"{path}: unknown deploy setting(s) {', '.join(unknown)}", f"known settings: {', '.join(KEYS)}")
            if isinstance(data.get("env"), dict):
                data["env"] = [f"{k}={v}" for k, v in data["env"].items()]
            return {key.replace("-", "_"): value for key, value in data.items()}, path
    return {}, None
