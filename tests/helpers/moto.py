"""moto's server on 127.0.0.1 for the AWS tests: every AWS call real over HTTP, Lambda configured never to run
(or pull) images — its ``invoke`` echoes the payload back, so what a function answers is checked elsewhere."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@contextmanager
def moto_server():
    """The server's endpoint URL, while it runs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            config = urllib.request.Request(f"{endpoint}/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(), method="POST", headers={"Content-Type": "application/json"})
            urllib.request.urlopen(config, timeout=2)  # never let moto run (or pull) Lambda images
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError("moto_server did not start") from None
            time.sleep(0.2)
    try:
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def aws_clients(endpoint: str, *services: str) -> dict:
    import boto3

    settings = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return {name: boto3.client(name, **settings) for name in services}
