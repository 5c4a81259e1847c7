"""`mpack serve` as a real subprocess on 127.0.0.1: its URL, its log lines, a clean stop."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class ServeProcess:
    LAMBDA_READY = r"Invoke API\s+(http://[\d.]+:\d+)/2015-03-31/functions/([\w-]+)/"
    FUNCTIONS_READY = r"invocations: \[POST\] (http://[\d.]+:\d+)/(api)/invocations"  # the local Functions host

    def __init__(self, bundle: Path, *args: str, cache: Path, startup_s: float = 60, ready: str = LAMBDA_READY) -> None:
        command = [sys.executable, "-m", "mpack.packager.cli", "serve", str(bundle), "--port", "0", "--cache-dir", str(cache), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_s
        while not (found := [m for line in list(self.lines) if (m := re.search(ready, line))]) or not any("Ctrl-C to stop" in line for line in list(self.lines)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("mpack serve did not start:\n" + "\n".join(self.lines))
            time.sleep(0.05)
        self.url, self.function = found[0].group(1), found[0].group(2)
        self.keys = {m.group(1): m.group(2) for line in list(self.lines) if (m := re.match(r"\s+(master|default)\s+(\S+)$", line))}

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def reports(self) -> list[str]:
        return [line for line in list(self.lines) if line.startswith(("REPORT RequestId:", "mpack: Id="))]

    def wait_for_reports(self, count: int, timeout_s: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.reports()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.reports()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
