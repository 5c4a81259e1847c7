"""The one exception family users can cause; the CLI turns it into `error:` / `hint:` lines.

Messages often quote what the user typed (a tracking URI, an endpoint); credentials inside them
(``https://user:secret@host``, ``?token=...``) are masked when the error is made, so no output path
(terminal, ``--json``, CI logs) can show them.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):(?P<secret>[^/@\s]+)@")
_SECRET_QUERY = re.compile(r"(?i)(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|sig|signature|key)=)[^&\s]+")


def redact_credentials(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``; secret query values -> ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}***", text)


class MpackError(Exception):
    """A problem the user can act on: what is wrong, and what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        message = redact_credentials(message)
        hint = redact_credentials(hint) if hint else hint
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class SmokeTestFailed(MpackError):
    """The new version or package answered, but not with predictions for its input example (or did not start): the
    version's own fault. A platform error while reaching it is not, and stays a plain MpackError."""
