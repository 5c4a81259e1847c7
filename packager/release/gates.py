"""The canary's verdict after its bake, from the platform's own figures for each version behind the alias.
No request during the bake is no failure (as with CodeDeploy's alarms): the verdict says so."""

from __future__ import annotations

from dataclasses import dataclass

from mpack.packager.release.config import Gates


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str


def judge(canary, stable, gates: Gates) -> Verdict:
    """``canary`` and ``stable``: figures with invocations, errors, error_rate (percent), p99_ms, p99_source."""
    if not canary.invocations:
        return Verdict(True, "the canary received no request during the bake: nothing to judge, promoted (as CodeDeploy's alarms do)")
    said = [f"{canary.invocations:g} requests, {canary.error_rate:.2f}% errors"]
    failures = []
    if canary.error_rate > gates.max_error_rate:
        failures.append(f"error rate {canary.error_rate:.2f}% is over {gates.max_error_rate:g}%")
    if canary.p99_ms is not None:
        said.append(f"p99 {canary.p99_ms:.1f} ms ({canary.p99_source})")
        if gates.max_p99_ms is not None and canary.p99_ms > gates.max_p99_ms:
            failures.append(f"p99 {canary.p99_ms:.1f} ms is over {gates.max_p99_ms:g} ms")
        if stable is not None and stable.invocations and stable.p99_ms:
            bound = stable.p99_ms * gates.max_p99_ratio
            said.append(f"stable p99 {stable.p99_ms:.1f} ms")
            if canary.p99_ms > bound:
                failures.append(f"p99 {canary.p99_ms:.1f} ms is over {gates.max_p99_ratio:g} x the stable version's {stable.p99_ms:.1f} ms")
    if failures:
        return Verdict(False, "; ".join(failures) + f" ({', '.join(said)})")
    return Verdict(True, "within the gates: " + ", ".join(said))
