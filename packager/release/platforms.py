"""The platforms a release can be synced to, by name: each reads what serves, holds a lease, judges a canary and
moves traffic (``aws_platform.AwsRelease``, ``azure_platform.AzureRelease``); choosing one by name is this module's job."""

from __future__ import annotations


def release_platform(release, options):
    """The release's platform, reporting each of its deploy steps through ``options.say``."""
    progress = (lambda step: options.say(step.line)) if options.say else None
    if release.platform == "aws":
        from mpack.packager.release.aws_platform import AwsRelease

        return AwsRelease(release, options.cache_dir, progress=progress)
    if release.platform == "azure":
        from mpack.packager.release.azure_platform import AzureRelease

        return AzureRelease(release, options.cache_dir, progress=progress)
    raise ValueError(f"no release platform {release.platform!r}")  # config.PLATFORM_KEYS refuses it before
