"""The local Lambda platform for one function: bundle + runtime folder + launcher + instance pool.

``mpack invoke`` uses it with one instance; ``mpack serve`` puts the Invoke API and the HTTP
gateway in front of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.infra.local.function_config import FunctionConfig, function_name_for
from mpack.infra.local.instance import FunctionInstance, InvocationResult
from mpack.infra.local.instance_pool import InstancePool
from mpack.infra.local.launcher import Launcher, ProcessLauncher
from mpack.infra.local.local_bundle import LocalBundle, open_bundle
from mpack.infra.local.runtime_dir import runtime_dir


class LocalLambda:
    def __init__(
        self, bundle: LocalBundle, config: FunctionConfig, cache_root: Path, max_concurrency: int = 1, launcher: Launcher | None = None, on_result: Callable[[InvocationResult], None] | None = None
    ) -> None:
        """``launcher``: how runtimes start (default: a local process beside a runtime folder in the
        cache); an image's bundle names its own runtime folder inside the image."""
        if max_concurrency < 1:
            raise MpackError(f"--max-concurrency {max_concurrency} must be at least 1", "use --max-concurrency 4 (the default)")
        self.bundle, self.config = bundle, config
        folder = bundle.runtime_dir or getattr(launcher, "runtime_dir", None) or runtime_dir(cache_root)
        self.launcher = launcher or ProcessLauncher(folder, bundle.task_root)
        factory = lambda number: FunctionInstance(config, self.launcher, bundle.task_root, folder, number)  # noqa: E731
        self.pool = InstancePool(config, factory, max_concurrency, on_result)

    def invoke(self, payload: bytes, client_context: str | None = None) -> InvocationResult:
        return self.pool.invoke(payload, client_context)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "LocalLambda":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def function_config(
    bundle: LocalBundle,
    *,
    name: str | None,
    handler: str | None,
    memory_mb: int,
    timeout_s: float,
    environment: tuple[tuple[str, str], ...] = (),
    init_limit_s: float | None = None,
    snapstart: bool = False,
) -> FunctionConfig:
    """The function's settings: flags first, then what the bundle's manifest says."""
    chosen_handler = handler or bundle.handler
    if not chosen_handler:
        raise MpackError(f"{bundle.task_root} has no mpack.json naming its handler", "pass --handler MODULE.FUNCTION (e.g. app.handler)")
    extra = {} if init_limit_s is None else {"init_limit_s": init_limit_s}
    return FunctionConfig(name=name or function_name_for(bundle.model_name), handler=chosen_handler, memory_mb=memory_mb, timeout_s=timeout_s, environment=environment, snapstart=snapstart, **extra)


__all__ = ["LocalLambda", "function_config", "open_bundle"]
