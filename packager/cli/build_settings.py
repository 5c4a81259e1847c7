"""Build settings from a file beside the code: ``allow_pickle`` at the top of ``mpack.toml`` or under
``[tool.mpack]`` in ``pyproject.toml``, so a team that trusts its own pickled models says so once.
Only ``allow_pickle`` is read here (deploy settings live in their own table); a value that is not
true or false is refused rather than guessed."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mpack.infra.errors import MpackError


def allow_pickle_setting(folder: Path) -> bool:
    for name, table in (("mpack.toml", ()), ("pyproject.toml", ("tool", "mpack"))):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MpackError(f"{path} is not valid TOML: {exc}", "fix the file, or remove it") from None
        for key in table:
            data = data.get(key) if isinstance(data, dict) else None
        if isinstance(data, dict) and "allow_pickle" in data:
            value = data["allow_pickle"]
            if not isinstance(value, bool):
                raise MpackError(f"{path}: allow_pickle must be true or false, not {value!r}", "write allow_pickle = true")
            return value
    return False
