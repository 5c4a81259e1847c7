"""Stages that package the state: a zip written beside its destination, verified, then published;
or an image built, verified and pushed. The target lays out ``state.files``, the libraries and the
handler modules its entry point imports; nothing here knows which target or runtime it is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mpack.packager.bundle.zip_writer import ZipResult, check_destination, partial_path, publish, write_zip, writing
from mpack.packager.runtimes import optional_handler_modules, runtime_of
from mpack.packager.targets import TARGETS
from mpack.packager.targets.handler_code import handler_modules


def handler_modules_of(target, runtime, lambda_http: str) -> frozenset[str]:
    """The handler modules the target's entry point imports for this runtime and HTTP mode: the
    branches other runtimes, targets and modes take at run time are left out."""
    optional = optional_handler_modules() | {module for other in TARGETS.values() for module in other.handler_modules}
    roots = (*target.entry_modules(runtime.standard_library, lambda_http), *runtime.handler_modules)
    return handler_modules(roots, frozenset(optional))


@dataclass
class ZipBundle:
    destination: Path
    partial: Path  # written here, renamed to the destination once verified
    written: ZipResult


def write_zip_bundle(state) -> None:
    options, target, runtime = state.options, state.target, runtime_of(state.unit.artifact)
    destination = options.output or target.default_output(state.unit.resolved.file_stem)
    with writing(destination):
        check_destination(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(destination)
    state.scope.callback(_remove, partial)  # a failed verification leaves nothing behind
    entries = target.entries(state.installed.site, state.files, handler_modules_of(target, runtime, options.lambda_http), runtime.standard_library, state.work, state.precompile())
    target.check_limits(entries)
    with writing(destination):
        written = write_zip(entries, partial)
    for warning in target.warnings(written.zipped_bytes):
        state.warn(warning)
    state.packaged = ZipBundle(destination, partial, written)


def publish_zip_bundle(state) -> None:
    with writing(state.packaged.destination):
        publish(state.packaged.partial, state.packaged.destination)


def _remove(path: Path) -> None:
    if path.exists():
        os.unlink(path)


@dataclass
class ImageBundle:
    image: object  # BuiltImage
    recipe: object  # ImageRecipe


def build_image_bundle(state) -> None:
    from mpack.infra.docker_engine import connect
    from mpack.packager.image.build import build_image
    from mpack.packager.image.labels import COMPONENT_NAMES, image_labels

    options, target, runtime, progress = state.options, state.target, runtime_of(state.unit.artifact), state.progress
    base = options.base_image or target.default_base(state.plan.python)
    tag = options.tag or target.default_tag(state.unit.resolved.name, str(state.unit.resolved.version))
    recipe = target.recipe(base, state.installed.site, state.files, handler_modules_of(target, runtime, options.lambda_http), state.work, state.installed.precompiled, image_labels(state.manifest, target.name))
    image = build_image(connect(), recipe, tag, f"linux/{'amd64' if state.plan.arch == 'x86_64' else 'arm64'}", progress.note)
    progress.note(f"{image.tag}: {image.size_bytes / 2**20:.0f} MB ({(image.size_bytes - image.base_size_bytes) / 2**20:.0f} MB above {base})")
    progress.note("by component: " + ", ".join(f"{COMPONENT_NAMES.get(name, name)} {size / 2**20:.1f} MB" for name, size in image.components.items()))
    state.packaged = ImageBundle(image, recipe)


def push_image_bundle(state) -> None:
    import dataclasses

    from mpack.infra.docker_engine import connect
    from mpack.packager.image.push import push_image

    pushed = push_image(connect(), state.packaged.image.tag, state.progress.note)
    state.progress.note(f"pushed {pushed}")
    state.packaged.image = dataclasses.replace(state.packaged.image, pushed=pushed)
