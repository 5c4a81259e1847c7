"""Runs a function instance's runtime as a container of a Lambda image (``--target lambda-image``).

The container's runtime interface client reaches the Runtime API on the Docker bridge's gateway.
As on Lambda: the memory size is the container's hard limit (no swap) and its CPU share is memory
/ 1,769 MB vCPUs; the root file system is read-only with a writable /tmp. Memory is measured from
the container's processes as seen from this host's /proc (the kernel's peak, as for processes), its
output is the container's log stream.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.infra.local.launcher import process_memory_mb, signal_description

LAMBDA_MB_PER_VCPU = 1769
HOST_ONLY = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "TMPDIR", "LAMBDA_RUNTIME_DIR")  # the image defines these
TMP_SIZE = "size=512m"  # Lambda's default ephemeral storage


class ContainerLauncher:
    def __init__(self, client, image: str) -> None:
        self.client, self.image = client, image
        self.listen_host = bridge_gateway(client)

    def launch(self, environment: dict[str, str], scratch: Path, memory_mb: int) -> "ContainerProcess":
        env = {key: value for key, value in environment.items() if key not in HOST_ONLY}
        container = self.client.containers.run(self.image, detach=True, environment=env, **lambda_limits(memory_mb))
        return ContainerProcess(container)


def lambda_limits(memory_mb: int) -> dict:
    """A function instance's container as Lambda sizes it: memory as the hard limit (no swap), CPU
    in proportion, a read-only root with a writable /tmp; labelled for clean-up."""
    cpus = min(os.cpu_count() or 1, max(0.1, memory_mb / LAMBDA_MB_PER_VCPU))
    return {
        "mem_limit": f"{memory_mb}m",
        "memswap_limit": f"{memory_mb}m",
        "nano_cpus": int(cpus * 1e9),
        "read_only": True,
        "tmpfs": {"/tmp": TMP_SIZE},
        "labels": {"io.mpack.emulator": "instance"},
    }


def bridge_gateway(client) -> str:
    """The host's address on Docker's default bridge (where containers reach this machine)."""
    import ipaddress

    try:
        config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    except Exception as exc:  # noqa: BLE001 - an engine without the default bridge
        raise MpackError(f"cannot find the Docker bridge network's gateway: {exc}", "the local platform needs Docker's default bridge network") from None


class ContainerProcess:
    def __init__(self, container) -> None:
        self.container = container
        container.reload()
        self.pid = container.attrs["State"]["Pid"]
        read_end, self._write_end = os.pipe()
        self.output_fd = read_end
        self._peak_mb = 0.0
        self._ended: str | None = None
        self.out_of_memory = False
        self._pump = threading.Thread(target=self._copy_logs, daemon=True)
        self._pump.start()

    def _copy_logs(self) -> None:
        try:
            for chunk in self.container.logs(stream=True, follow=True):
                os.write(self._write_end, chunk)
        except Exception:  # noqa: BLE001 - the container is gone: its stream ends
            pass
        finally:
            os.close(self._write_end)

    def exit_description(self) -> str | None:
        if self._ended is not None:
            return self._ended
        if self.pid and os.path.exists(f"/proc/{self.pid}"):
            return None
        self.container.reload()
        state = self.container.attrs["State"]
        if state.get("Running"):
            return None
        code = state.get("ExitCode", 0)
        if state.get("OOMKilled") or code == 137:
            self._ended, self.out_of_memory = "signal: killed", bool(state.get("OOMKilled"))
        elif code > 128:
            self._ended = signal_description(code - 128)
        else:
            self._ended = f"exit status {code}"
        return self._ended

    def memory_mb(self) -> tuple[float, float]:
        current, peak = process_memory_mb(self.pid) if self.pid else (0.0, 0.0)
        self._peak_mb = max(self._peak_mb, current, peak)
        return current, self._peak_mb

    def kill(self) -> None:
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
