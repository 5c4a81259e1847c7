"""Stage: each unit's model URI -> the resolved model (files, version) and its MLmodel."""

from __future__ import annotations

from mpack.packager.convert.registry import read_model
from mpack.packager.source.resolve import parse_source, resolve


def resolve_units(state) -> None:
    options = state.options
    for unit in state.units:
        unit.resolved = resolve(parse_source(unit.uri), state.work, options.tracking_uri, options.registry_uri)
        unit.model = read_model(unit.resolved)
        state.progress.note(f"{unit.resolved.source.uri} -> {unit.resolved.name} version {unit.resolved.version}")
