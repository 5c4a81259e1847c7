"""Stage: mpack.json for the chosen artifacts, and the files the bundle holds beside its code and
libraries (``state.files``): targets package exactly these, so a new kind of file reaches them all."""

from __future__ import annotations

from dataclasses import replace

from mpack.packager.build_state import BundleFile
from mpack.packager.bundle.manifest import MANIFEST_NAME, build_manifest, manifest_bytes


def write_manifest(state) -> None:
    state.manifest = manifest_of(state)
    state.files = bundle_files(state, state.manifest)


def manifest_of(state) -> dict:
    unit, options, target = state.unit, state.options, state.target
    artifact = unit.artifact
    recorded = {**options.recorded(), **target.recorded_options(options)}
    if artifact.precision:
        recorded["precision"] = artifact.precision  # what the graph computes in (auto chose it, or --precision asked)
    return build_manifest(
        target=target.name,
        handler=target.handler,
        resolved=unit.resolved,
        converted=replace(unit.converted, model_file=artifact.file),
        model_file=artifact.file,
        model_bytes=artifact.data,
        runtime=state.plan,
        example=unit.checks.example,
        options=recorded,
        micro=artifact.contract.get("micro"),
    )


def bundle_files(state, manifest: dict) -> list[BundleFile]:
    """The model file(s) and mpack.json, by their names in the bundle."""
    artifact = state.unit.artifact
    return [BundleFile(artifact.file, artifact.data), BundleFile(MANIFEST_NAME, manifest_bytes(manifest))]
