"""The one exception family users can cause; the CLI turns it into `error:` / `hint:` lines."""

from __future__ import annotations


class MpackError(Exception):
    """A problem the user can act on: what is wrong, and what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"
