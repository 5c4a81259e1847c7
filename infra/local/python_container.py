"""A zip bundle for another Python (or architecture) than this machine's, run in a container of
that Python: the unpacked bundle at /var/task and the runtime folder at /var/runtime (both
read-only, as on Lambda), the interpreter from a base image.

The default image is Debian's Python of that minor version built from Debian packages
(trixie has 3.13, forky 3.14, bookworm 3.11; the build makes it on first use); no Debian release ships 3.12, so a
3.12 bundle needs an image given with --base-image (AWS's public.ecr.aws/lambda/python:3.12 pulled
where a registry is reachable). An arm64 bundle runs on an x86_64 machine only when the engine has
QEMU user emulation registered (binfmt_misc); the platform says so otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.infra.local.container_launcher import ContainerProcess, bridge_gateway, lambda_limits

DEBIAN_PYTHONS = {"3.11": "bookworm", "3.13": "trixie", "3.14": "forky"}
TASK_ROOT, RUNTIME_ROOT = "/var/task", "/var/runtime"
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


def default_image(python: str) -> str:
    suite = DEBIAN_PYTHONS.get(python)
    if suite is None:
        raise MpackError(
            f"no Debian release ships Python {python}, so mpack has no default image for it",
            f"pass --base-image with an image of Python {python} (e.g. public.ecr.aws/lambda/python:{python}, pulled where a registry is reachable)",
        )
    return f"mpack/python:{python}-{suite}"


BINFMT = {"arm64": "/proc/sys/fs/binfmt_misc/qemu-aarch64", "x86_64": "/proc/sys/fs/binfmt_misc/qemu-x86_64"}


def check_architecture(arch: str) -> None:
    """Another CPU architecture runs only through QEMU user emulation registered with the kernel."""
    import platform

    here = {"aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    if arch != here and not os.path.exists(BINFMT[arch]):
        raise MpackError(
            f"an {arch} bundle cannot run on this {here} machine: no QEMU user emulation is registered ({BINFMT[arch]} is missing)",
            "register it (Debian: apt-get install qemu-user-static binfmt-support), or build for this machine's --arch",
        )


def check_image(client, image: str, python: str) -> None:
    from mpack.infra.docker_engine import image_exists

    if not image_exists(client, image):
        suite = DEBIAN_PYTHONS.get(python)
        build = f"mpack base-image --suite {suite} --tag {image}" if suite else f"docker pull an image of Python {python} and pass it with --base-image"
        raise MpackError(f"the image {image} (Python {python}) is not on this machine", f"build it first: {build}")


def container_image(python: str, arch: str, image: str | None = None) -> tuple:
    """(Docker client, image) for running that Python and architecture here, or an MpackError
    naming what is missing: QEMU for another CPU, an image for the Python, the engine, the image."""
    from mpack.infra.docker_engine import connect

    check_architecture(arch)
    chosen = image or default_image(python)
    client = connect()
    check_image(client, chosen, python)
    return client, chosen


class PythonContainerLauncher:
    """Launches a function instance's runtime as `python3 /var/runtime/bootstrap.py` in ``image``."""

    def __init__(self, client, image: str, task_root: Path, runtime_dir: Path, python: str, arch: str) -> None:
        self.client, self.image, self.python, self.arch = client, image, python, arch
        self.task_root, self.runtime_dir = task_root, runtime_dir
        self.listen_host = bridge_gateway(client)

    def launch(self, environment: dict[str, str], scratch: Path, memory_mb: int) -> ContainerProcess:
        env = dict(environment)
        env.update(
            PATH="/usr/local/bin:/usr/bin:/bin",
            PYTHONPATH=RUNTIME_ROOT,
            LAMBDA_TASK_ROOT=TASK_ROOT,
            LAMBDA_RUNTIME_DIR=RUNTIME_ROOT,
            TMPDIR="/tmp",
            AWS_EXECUTION_ENV=f"AWS_Lambda_python{self.python}",
        )
        env.pop("LD_LIBRARY_PATH", None)
        try:
            container = self.client.containers.run(
                self.image,
                ["python3", f"{RUNTIME_ROOT}/bootstrap.py"],
                detach=True,
                environment=env,
                platform=PLATFORMS[self.arch],
                volumes={str(self.task_root): {"bind": TASK_ROOT, "mode": "ro"}, str(self.runtime_dir): {"bind": RUNTIME_ROOT, "mode": "ro"}},
                working_dir=TASK_ROOT,
                **lambda_limits(memory_mb),
            )
        except Exception as exc:  # noqa: BLE001 - docker's APIError and friends, translated here
            raise MpackError(
                f"cannot start a Python {self.python} {self.arch} container from {self.image}: {str(exc)[:300]}",
                "for arm64 on this machine the engine needs QEMU user emulation (binfmt_misc); see the README",
            ) from None
        return ContainerProcess(container)


def foreign_launcher(path: Path, bundle, cache: Path, image: str | None = None) -> PythonContainerLauncher | None:
    """The launcher for a bundle of another Python or architecture (None for this machine's own),
    or an MpackError saying what is missing (Docker, the image) and how to get it."""
    import sys

    from mpack.infra.local.local_bundle import foreign_runtime
    from mpack.infra.local.runtime_dir import runtime_dir_for

    foreign = foreign_runtime(bundle.manifest)
    if foreign is None:
        return None
    python, arch = foreign
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        client, chosen = container_image(python, arch, image)
    except MpackError as error:
        raise MpackError(
            f"{path} is built for Python {python} on {arch}, which runs here in a container of that Python: {error.message}",
            f"{error.hint}; or rebuild with --python {here} to run it without a container",
        ) from None
    return PythonContainerLauncher(client, chosen, bundle.task_root, runtime_dir_for(python, arch, cache), python, arch)


_COMPILE = (
    "import compileall, py_compile, sys; sys.exit(0 if compileall.compile_dir('/code', quiet=2, stripdir='/code', invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, workers=1) else 1)"
)


def container_compiler(python: str, arch: str, image: str | None = None):
    """A function that precompiles a folder to unchecked-hash .pyc with that Python, in a container
    of it (what compile_tree does with this interpreter); None when no such container can run here."""
    try:
        client, chosen = container_image(python, arch, image)
    except MpackError:
        return None

    def compile_folder(folder: Path) -> None:
        try:
            client.containers.run(chosen, ["python3", "-c", _COMPILE], remove=True, platform=PLATFORMS[arch], volumes={str(folder): {"bind": "/code", "mode": "rw"}}, network_disabled=True)
        except Exception as exc:  # noqa: BLE001 - docker's ContainerError (exit 1) and friends
            raise MpackError(f"cannot precompile the bundle's Python files with Python {python} in {chosen}: {str(exc)[:300]}", "a file is not valid Python for that version") from None

    return compile_folder


_TIMED = r"""
import json, subprocess, sys, time
runs, script, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "LANG": "C.UTF-8"}
times = []
for _ in range(runs):
    started = time.perf_counter()
    done = subprocess.run(["python3", "-I", "-S", "-c", script, *args], capture_output=True, text=True, env=environment)
    times.append(time.perf_counter() - started)
    if done.returncode:
        print(json.dumps({"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}))
        sys.exit(0)
print(json.dumps({"times": times}))
"""


def container_timer(python: str, arch: str, image: str | None = None):
    """A function timing fresh ``python3 -I -S -c SCRIPT ARGS`` processes in a container of that
    Python (a folder mounted read-only at /var/task, sized as a 1,769 MB function): the times are
    taken inside the container, so Docker's own start is not counted. Returns seconds per run."""
    client, chosen = container_image(python, arch, image)

    def time_runs(folder: Path, script: str, args: list[str], runs: int) -> list[float]:
        try:
            output = client.containers.run(
                chosen,
                ["python3", "-c", _TIMED, str(runs), script, *args],
                remove=True,
                platform=PLATFORMS[arch],
                volumes={str(folder): {"bind": TASK_ROOT, "mode": "ro"}},
                network_disabled=True,
                **lambda_limits(1769),
            )
        except Exception as exc:  # noqa: BLE001 - docker's ContainerError and friends
            raise MpackError(f"cannot time the bundle in a Python {python} container ({chosen}): {str(exc)[:300]}", "rerun with --debug") from None
        result = json.loads(output)
        if "error" in result:
            raise MpackError(f"the bundle failed in a Python {python} container ({chosen}): {result['error'][:300]}", "rerun with --debug; build with --runtime onnx to skip the comparison")
        return result["times"]

    return time_runs
