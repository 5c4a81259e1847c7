"""The HTTP container's server (uvicorn + Starlette) as the image starts it, `python -m
mpack.handlers.container_main serve`, on an unpacked bundle in this interpreter, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def container_server(root: Path, startup_s: float = 60, **environment: str):
    """Yields the port of a server answering on the bundle at ``root``; stopped with SIGTERM."""
    port = free_port()
    env = {**os.environ, "MPACK_BUNDLE_ROOT": str(root), "PORT": str(port), "MPACK_HOST": "127.0.0.1", **environment}
    process = subprocess.Popen([sys.executable, "-m", "mpack.handlers.container_main", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + startup_s
        while not _answers_ping(port):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.poll() is not None else "server did not start"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(20)


def _answers_ping(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
