"""What a runtime prints, split per invocation.

Everything the function printed before it posted its response is already in the pipe when the
response arrives, so ``take()`` drains the pipe to its end and returns the invocation's output whole.
The pipe is enlarged to 1 MB and a reader empties it every 20 ms, so a chatty function never blocks
on a full pipe, and a quiet one costs no wake-ups (waking on every line would cost the emulator's
hot path its GIL).

What is kept per invocation is capped (the last ``MAX_KEPT_BYTES``, with a line saying how much was
dropped before it): a function printing 100 MB costs the platform 4 MB, not 100.
"""

from __future__ import annotations

import fcntl
import os
import threading

_CHUNK = 65536
_PIPE_BYTES = 1 << 20
_PUMP_INTERVAL_S = 0.02
MAX_KEPT_BYTES = 4 << 20


class RuntimeOutput:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:  # over /proc/sys/fs/pipe-max-size: the reader just runs more often
            pass
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def take(self) -> str:
        """All output so far (the pipe drained to its end), removed from the buffer."""
        with self._lock:
            self._drain()
            text, self._buffer = self._buffer.decode("utf-8", "replace"), bytearray()
            dropped, self._dropped = self._dropped, 0
        if dropped:
            text = f"[mpack: {dropped} bytes of earlier output dropped; the last {MAX_KEPT_BYTES} are kept]\n" + text
        return text

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            self._closed = True
            os.close(self._fd)

    def _pump(self) -> None:
        while not self._stopped.wait(_PUMP_INTERVAL_S):
            with self._lock:
                if self._closed or not self._drain():
                    return

    def _drain(self) -> bool:
        """Read what is in the pipe; False at end of file."""
        while True:
            try:
                chunk = os.read(self._fd, _CHUNK)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._buffer += chunk
            excess = len(self._buffer) - MAX_KEPT_BYTES
            if excess > 0:
                del self._buffer[:excess]
                self._dropped += excess
