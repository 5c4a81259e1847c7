"""What serves a release, in the registry's terms (model versions), read from the platform: the version the
alias sends its traffic to, a canary beside it with its share and start, and every version published earlier
(which can serve again without a build). Platform-neutral: a platform module fills it in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Serving:
    exists: bool  # the function (app) exists
    primary: str | None = None  # model version serving the alias (its main version)
    primary_id: str | None = None  # the platform's id of it (Lambda version)
    primary_settings_differ: bool = False  # the main version runs with other settings than the release asks
    canary: str | None = None  # model version of the canary, if any
    canary_id: str | None = None
    canary_share: float = 0.0  # percent
    canary_since: int | None = None  # epoch seconds
    published: dict = field(default_factory=dict)  # model version -> the platform ids publishing it with the release's settings
    where: str = ""  # "aws lambda fraud:live (us-east-1)", for the registry's tags
