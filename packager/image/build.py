"""Container images through the Docker engine (docker SDK), from a generated build context and the
Dockerfile template in templates/images.

Reproducible layers: every file of the context gets the same fixed timestamp, so an unchanged layer
(the runtime libraries, when only the model changed) has a byte-identical digest even without the
engine's build cache. The base image must already be on the machine: mpack never pulls.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from string import Template

from mpack.infra.docker_engine import image_exists
from mpack.infra.errors import MpackError
from mpack.packager.image.base_image import split_reference

FIXED_MTIME = 315532800  # 1980-01-01, as in the zips
LAMBDA_IMAGE_LIMIT = 10 * 1024**3


@dataclass(frozen=True)
class ImageLayer:
    name: str  # its folder in the build context
    source: Path
    destination: str  # absolute path in the image


@dataclass(frozen=True)
class ImageRecipe:
    base: str
    layers: tuple[ImageLayer, ...]
    entrypoint: tuple[str, ...]
    command: tuple[str, ...] = ()
    environment: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    expose: int | None = None
    user: str = "65532:65532"  # non-root, no /etc/passwd entry needed
    workdir: str | None = None


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    size_bytes: int
    base_size_bytes: int
    layers: tuple[str, ...]  # diff ids, base first
    pushed: str | None = None  # repository@sha256:... once pushed
    components: dict = field(default_factory=dict)  # bytes by component: base, then each layer of the recipe (deps, cuda, model, app)

    def to_dict(self) -> dict:
        described = {"tag": self.tag, "id": self.image_id, "size_bytes": self.size_bytes, "base_size_bytes": self.base_size_bytes, "layers": list(self.layers), "pushed": self.pushed}
        return {**described, "components": dict(self.components)}


def default_image_tag(model_name: str, version: str, target: str) -> str:
    return f"mpack/{model_name.lower()}:{version}-{target}"


def render_dockerfile(recipe: ImageRecipe) -> str:
    copies = "\n".join(f"COPY {layer.name}/ {layer.destination}/" for layer in recipe.layers)
    return Template(files("mpack.templates").joinpath("images", "Dockerfile").read_text()).substitute(
        base=recipe.base,
        environment=" ".join(f"{key}={json.dumps(value)}" for key, value in recipe.environment.items()),
        copies=copies,
        user=recipe.user,
        expose=f"EXPOSE {recipe.expose}" if recipe.expose else "",
        labels=" ".join(f"{json.dumps(key)}={json.dumps(value)}" for key, value in sorted(recipe.labels.items())),
        entrypoint=f"ENTRYPOINT {json.dumps(list(recipe.entrypoint))}" if recipe.entrypoint else "# the base image's entry point",
        workdir=f"WORKDIR {recipe.workdir}" if recipe.workdir else "",
        command=json.dumps(list(recipe.command)),
    )


def build_image(client, recipe: ImageRecipe, tag: str, platform: str | None = None, log=lambda text: None) -> BuiltImage:
    if not image_exists(client, recipe.base):
        raise MpackError(
            f"base image {recipe.base} is not on this machine (mpack never pulls)",
            f"docker pull {recipe.base} where a registry is reachable, or build one from Debian packages: mpack base-image, then --base-image {recipe.base if recipe.base.startswith('mpack/') else 'mpack/python:3.11-bookworm'}",
        )
    _check_tag(tag)
    with tempfile.TemporaryDirectory(prefix="mpack-image-") as folder:
        context = Path(folder)
        for layer in recipe.layers:
            shutil.copytree(layer.source, context / layer.name, copy_function=link_or_copy)
        (context / "Dockerfile").write_text(render_dockerfile(recipe))
        _fix_times(context)
        last = ""
        from docker.errors import APIError, BuildError

        try:
            for chunk in client.api.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, decode=True, platform=platform):
                if "error" in chunk:
                    raise MpackError(f"the image build failed: {chunk['error'].strip()[:500]}", "rerun with --debug; the step above the error names the failing instruction")
                text = chunk.get("stream", "").strip()
                if text:
                    last = text
                    if text.startswith("Step "):
                        log(text)
        except (APIError, BuildError) as exc:
            raise MpackError(f"the Docker engine refused the build: {exc}", f"last output: {last[:300]}") from None
    image = client.images.get(tag)
    base = client.images.get(recipe.base)
    if image.attrs.get("Size", 0) > LAMBDA_IMAGE_LIMIT and recipe.workdir == "/var/task":
        raise MpackError(f"the image is {image.attrs['Size'] / 2**30:.1f} GB, over Lambda's 10 GB image limit", "use the gpu or container target on a platform without that limit")
    components = {"base": base.attrs.get("Size", 0), **{layer.name: _folder_bytes(layer.source) for layer in recipe.layers}}
    return BuiltImage(tag, image.id, image.attrs.get("Size", 0), base.attrs.get("Size", 0), tuple(image.attrs["RootFS"]["Layers"]), components=components)


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _check_tag(tag: str) -> None:
    repository, version = split_reference(tag)
    if not repository or repository != repository.lower() or not version or len(version) > 128 or any(c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-" for c in version):
        raise MpackError(f"--tag {tag!r} is not a valid image reference", "use lower-case NAME[:TAG], e.g. mpack/fraud:3")


def link_or_copy(source: str, destination: str) -> None:
    """``copy_function`` for shutil.copytree: a hard link where the file system allows, else a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _fix_times(root: Path) -> None:
    for folder, dirs, names in os.walk(root):
        for name in names + dirs:
            os.utime(os.path.join(folder, name), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(root, (FIXED_MTIME, FIXED_MTIME))
