"""Stage: the runtime libraries of the candidates that need any (onnxruntime and numpy, or a native
model's own), installed for the bundle's Python and architecture (cached); a container of that
Python first when it is not this interpreter's (Lambda zips compile, measure and verify there)."""

from __future__ import annotations

from mpack.packager.bundle.dependencies import InstalledRuntime, default_cache_dir, install_runtime
from mpack.packager.bundle.other_python import prepare_other_python
from mpack.packager.runtimes import runtime_of


def install_libraries(state) -> None:
    options, progress, plan = state.options, state.progress, state.plan
    state.other = prepare_other_python(plan, state.target, options.base_image, options.verify, progress, state.warn)
    with_libraries = [a for unit in state.units for a in unit.candidates if not runtime_of(a).standard_library]
    if not with_libraries:
        state.installed = no_packages(state.work, plan.matches_host)
        progress.note(f"no libraries for Python {plan.python} {plan.arch}: the micro runtime is the standard library")
        return
    libraries = runtime_of(with_libraries[0]).plan(plan, with_libraries[0])
    state.installed = install_runtime(libraries, options.cache_dir or default_cache_dir(), progress.note, state.other.compiler if state.other else None)
    named = ", ".join(libraries.model_packages) if libraries.model_packages else f"onnxruntime {libraries.onnxruntime}, numpy {libraries.numpy}"
    progress.note(f"{named} for Python {plan.python} {plan.arch}" + (" (cached)" if state.installed.cache_hit else ""))


def no_packages(work, precompiled: bool) -> InstalledRuntime:
    """A standard-library runtime's libraries: none (an empty site folder)."""
    folder = work / "no-packages"
    folder.mkdir(parents=True, exist_ok=True)
    return InstalledRuntime(folder, True, "micro", precompiled)
