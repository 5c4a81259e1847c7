"""The platforms a release can be synced to, by name: each reads what serves, holds a lease, judges a canary and
moves traffic (``aws_platform.AwsRelease``). Azure comes as its own module here."""

from __future__ import annotations


def release_platform(release, options):
    """The release's platform, reporting each of its deploy steps through ``options.say``."""
    progress = (lambda step: options.say(step.line)) if options.say else None
    if release.platform == "aws":
        from mpack.packager.release.aws_platform import AwsRelease

        return AwsRelease(release, options.cache_dir, progress=progress)
    raise ValueError(f"no release platform {release.platform!r}")  # config.PLATFORMS refuses it before
