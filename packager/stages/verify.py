"""Stage: the finished bundle answers its input example where it will run — a fresh interpreter,
the local Functions host, a container of its Python, or the image itself — like the chosen
artifact answered in this process."""

from __future__ import annotations

from mpack.packager.bundle.dependencies import default_cache_dir
from mpack.packager.check.verify import ASGI_STACK, FORBIDDEN_AT_RUNTIME, skipped
from mpack.packager.runtimes import runtime_of
from mpack.packager.bundle.runtime_plan import DIRECT_HTTP

STANDARD_LIBRARY_ONLY = ("numpy", "onnxruntime", "aws_lambda_powertools")  # what a standard-library bundle must never import


def verify_zip_bundle(state) -> None:
    state.verification = skipped("disabled with --no-verify") if not state.options.verify else _verified_zip(state)


def verify_image_bundle(state) -> None:
    from mpack.infra.docker_engine import connect
    from mpack.packager.bundle.runtime_plan import host_arch

    if not state.options.verify:
        state.verification = skipped("disabled with --no-verify")
        return
    if state.plan.arch != host_arch():
        reason = f"the image is for {state.plan.arch}; this machine cannot run it"
        state.progress.warn(reason)
        state.verification = skipped(reason)
        return
    packaged = state.packaged
    state.verification = state.target.verify_image(connect(), packaged.image, packaged.recipe, state.manifest, state.unit.checks.example, _expected(state), _tolerance(state), state.progress)


def _verified_zip(state):
    options, target, plan, progress = state.options, state.target, state.plan, state.progress
    partial, request = state.packaged.partial, state.unit.checks.example
    if not plan.matches_host:
        return _verified_elsewhere(state)
    runtime = runtime_of(state.unit.artifact)
    forbidden = () if runtime.ships_model_as_itself else FORBIDDEN_AT_RUNTIME + (ASGI_STACK if options.lambda_http == DIRECT_HTTP else ())
    if runtime.standard_library:
        forbidden += STANDARD_LIBRARY_ONLY
    verification = target.verify(partial, request, _expected(state), _tolerance(state), forbidden)
    progress.note(f"answered the input example {target.verified_where} (init {verification.init_seconds * 1000:.0f} ms)")
    return verification


def _verified_elsewhere(state):
    """A zip for another Python than this interpreter's is verified in a container of that Python
    when Docker and its image are here; otherwise skipped, saying what would make it run."""
    from mpack.packager.check.verify_container import container_unavailable, verify_in_container

    options, plan = state.options, state.plan
    unavailable = container_unavailable(plan.python, plan.arch, options.base_image) if state.target.python_containers else f"--target {state.target.name} bundles are not run in a container of their Python"
    if unavailable:
        reason = f"target Python {plan.python}/{plan.arch} differs from this interpreter and the bundle was not run: {unavailable}"
        state.progress.warn(reason)
        return skipped(reason)
    verification = verify_in_container(state.packaged.partial, state.unit.checks.example, _expected(state), _tolerance(state), options.cache_dir or default_cache_dir(), options.base_image)
    state.progress.note(f"answered the input example in a Python {plan.python} {plan.arch} container")
    return verification


def _expected(state):
    """The chosen artifact's answer to the input example, in this process (or the model's environment)."""
    return state.unit.artifact.service.score_document(state.unit.checks.example).body["predictions"]


def _tolerance(state) -> float:
    return max(state.options.tolerance, 1e-6)
