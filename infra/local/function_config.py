"""What the local platform knows about the function it runs: name, handler, limits, environment,
and the exact environment variables a Lambda Python runtime sees."""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mpack.infra.errors import MpackError

MEMORY_RANGE_MB = (128, 10_240)
TIMEOUT_RANGE_S = (1, 900)
INIT_LIMIT_S = 10.0
RESERVED_VARIABLES = ("_HANDLER", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")
ENVIRONMENT_LIMIT_BYTES = 4096
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    handler: str
    memory_mb: int = 1024
    timeout_s: float = 3.0
    region: str = "us-east-1"
    environment: tuple[tuple[str, str], ...] = ()
    init_limit_s: float = INIT_LIMIT_S  # Lambda's fixed 10 s; tests shorten it
    account: str = field(default="000000000000")
    snapstart: bool = False  # initialize for a snapshot, restore, then invoke (SnapStart's phases)

    def __post_init__(self) -> None:
        if not FUNCTION_NAME.fullmatch(self.name):
            raise MpackError(f"function name {self.name!r} is not valid on Lambda", "use 1-64 letters, digits, hyphens or underscores (--name)")
        low, high = MEMORY_RANGE_MB
        if not low <= self.memory_mb <= high:
            raise MpackError(f"--memory {self.memory_mb} is outside Lambda's range of {low}-{high} MB", "pick a memory size between 128 and 10240")
        low, high = TIMEOUT_RANGE_S
        if not low <= self.timeout_s <= high:
            raise MpackError(f"--timeout {self.timeout_s:g} is outside Lambda's range of {low}-{high} seconds", "pick a timeout between 1 and 900 seconds")
        clashes = [key for key, _ in self.environment if key in RESERVED_VARIABLES]
        if clashes:
            raise MpackError(f"--env {clashes[0]} is set by Lambda itself and cannot be overridden", "remove it from --env")
        size = sum(len(key) + len(value) for key, value in self.environment)
        if size > ENVIRONMENT_LIMIT_BYTES:
            raise MpackError(f"the --env variables take {size} bytes, over Lambda's 4 KB limit", "keep large settings in a file inside the bundle")

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"


def function_name_for(model_name: str | None) -> str:
    """A valid Lambda function name from a model name (other characters become hyphens)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", model_name or "").strip("-")[:64]
    return name or "function"


def parse_environment(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` strings from the command line, refused with the offending text."""
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise MpackError(f"--env {pair!r} is not KEY=VALUE with a valid variable name", "write it as --env NAME=value")
        parsed.append((key, value))
    return tuple(parsed)


def runtime_environment(config: FunctionConfig, task_root: Path, runtime_dir: Path, api_address: str, scratch: Path) -> dict[str, str]:
    """The variables a Lambda Python runtime starts with (TMPDIR points at the instance's scratch)."""
    python = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    stream = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{secrets.token_hex(16)}"
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", ""),
        "PYTHONPATH": str(runtime_dir),
        "_HANDLER": config.handler,
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{python}",
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if config.snapstart else "on-demand",
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "TMPDIR": str(scratch),
        **dict(config.environment),
    }
