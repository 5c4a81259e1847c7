"""Watching a client socket for the server hanging up."""

from __future__ import annotations

import socket


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """True when the server hangs up (EOF or reset) within ``within_s`` and sends nothing before."""
    sock.settimeout(max(within_s, 0.01))
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
