"""Function keys as the Functions host checks them: ``x-functions-key`` header or ``code`` query.

Levels: anonymous (no key), function (the function's key, a host key or the master key), admin
(the master key only). Keys are random per host start (or given), printed when the host starts.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

LEVELS = ("anonymous", "function", "admin")


def new_key() -> str:
    return secrets.token_urlsafe(40)


@dataclass
class HostKeys:
    master: str = field(default_factory=new_key)
    host_default: str = field(default_factory=new_key)
    functions: dict[str, str] = field(default_factory=dict)  # function name -> its "default" key

    def for_function(self, name: str) -> str:
        if name not in self.functions:
            self.functions[name] = new_key()
        return self.functions[name]

    def allows(self, level: str, function: str, headers: dict, query: dict) -> bool:
        if level == "anonymous":
            return True
        given = headers.get("x-functions-key") or query.get("code") or ""
        if not given:
            return False
        accepted = [self.master] if level == "admin" else [self.master, self.host_default, self.for_function(function)]
        return any(hmac.compare_digest(given.encode(), key.encode()) for key in accepted)
