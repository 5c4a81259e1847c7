"""HTTP routes as the Functions host matches them: host.json's ``routePrefix``, then each function's
route template (ASP.NET style: ``{name}``, optional ``{name?}``, catch-all ``{*rest}``, constraints
such as ``{id:int}``), case-insensitive, literal routes before templated ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(\?)?(?::([^}]*))?\}")
_CONSTRAINTS = {"int": r"-?\d+", "long": r"-?\d+", "bool": r"(?i:true|false)", "alpha": r"[A-Za-z]+", "guid": r"[0-9A-Fa-f-]{36}"}


@dataclass(frozen=True)
class Route:
    function: dict  # the worker's description: name, methods, auth_level, binding
    pattern: re.Pattern
    literal: bool

    def match(self, method: str, path: str) -> dict | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {k: unquote(v) for k, v in found.groupdict().items() if v is not None}

    def allows(self, method: str) -> bool:
        methods = self.function.get("methods")
        return not methods or method.upper() in methods


def compile_route(prefix: str, function: dict) -> Route:
    """``prefix`` is host.json's routePrefix (``api`` unless set; empty: none)."""
    template = (function.get("route") or function["name"]).strip("/")
    parts = [p for p in (prefix.strip("/"), template) if p]
    full = "/".join(parts)
    regex, literal, position = "", True, 0
    for found in _PARAMETER.finditer(full):
        literal = False
        regex += re.escape(full[position : found.start()])
        catch_all, name, optional, constraint = found.groups()
        body = ".*" if catch_all else _CONSTRAINTS.get((constraint or "").split("(")[0], r"[^/]+")
        if catch_all or optional:
            if regex.endswith("/"):  # "/{x?}": the slash goes with the optional part
                regex = regex[:-1] + f"(?:/(?P<{name}>{body}))?"
            else:
                regex += f"(?P<{name}>{body})?"
        else:
            regex += f"(?P<{name}>{body})"
        position = found.end()
    regex += re.escape(full[position:])
    return Route(function, re.compile("/" + regex + "/?", re.IGNORECASE), literal)


def route_table(prefix: str, functions: list[dict]) -> list[Route]:
    routes = [compile_route(prefix, f) for f in functions if f.get("trigger") == "httpTrigger"]
    return sorted(routes, key=lambda r: not r.literal)  # literal routes win, as ASP.NET orders them


def find_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict] | None:
    """The first route whose template and methods match (a method no route takes is a 404, as on Azure)."""
    for route in routes:
        params = route.match(method, path)
        if params is not None and route.allows(method):
            return route, params
    return None
