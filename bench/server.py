"""Helpers of the benchmarks that start a real server (bench/ingest.py and bench/live.py both do)."""

from __future__ import annotations

import socket
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (local server)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
