"""Entry point of the HTTP container: ``python3 -m mpack.handlers.container_main [serve]``.

``serve`` is accepted because SageMaker starts containers as ``docker run IMAGE serve``. The port
is ``PORT`` (Cloud Run, Knative), else ``SAGEMAKER_BIND_TO_PORT``, else 8080; ``MPACK_WORKERS``
(or ``WEB_CONCURRENCY``) processes. On SIGTERM uvicorn stops accepting and lets in-flight requests
finish (up to ``MPACK_GRACEFUL_SECONDS``, default 25: under SageMaker's and Kubernetes' 30 s).
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: container_main [serve]   (settings: PORT, MPACK_WORKERS, MPACK_HOST, MPACK_GRACEFUL_SECONDS)"


def _number(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value:
            if not value.isdigit():
                sys.exit(f"{name}={value!r} is not a whole number\n{USAGE}")
            return int(value)
    return default


def main(argv: list[str]) -> None:
    extra = [arg for arg in argv if arg != "serve"]
    if extra:
        sys.exit(f"unknown argument(s) {' '.join(extra)}\n{USAGE}")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import uvicorn

    uvicorn.run(
        "mpack.handlers.container_app:app",
        host=os.environ.get("MPACK_HOST", "0.0.0.0"),
        port=_number(("PORT", "SAGEMAKER_BIND_TO_PORT"), 8080),
        workers=_number(("MPACK_WORKERS", "WEB_CONCURRENCY"), 1),
        timeout_graceful_shutdown=_number(("MPACK_GRACEFUL_SECONDS",), 25),
        access_log=False,
        log_level=os.environ.get("MPACK_LOG_LEVEL", "info"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
