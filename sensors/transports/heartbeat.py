"""Consumer heartbeats: each Redis consumer says in Redis that it is reading, so that the health check can tell.

Neither a pub/sub channel nor a stream says whether anything reads it at this moment (PUBLISH returns 0 receivers
only to the publisher; a stream's group outlives its consumers), so `/healthcheck` answered `ok` while nothing read.
While a consumer reads, it keeps a key `sensors:consumer:<transport>:<host>:<pid>` alive: set with a TTL of
`HEARTBEAT_TTL` seconds, refreshed every `HEARTBEAT_EVERY` seconds from its read loop (so a consumer stuck in a
read loop that no longer turns, or killed, disappears within the TTL), deleted when it stops cleanly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter
from typing import Any

import redis

logger = logging.getLogger("sensors.ingest")

KEY_PREFIX = "sensors:consumer:"
HEARTBEAT_TTL = 15  # seconds: a consumer not heard of for this long is not reading
HEARTBEAT_EVERY = 5.0


def heartbeat_key(transport: str, *, pid: int | None = None) -> str:
    """The key of this process's (or, with `pid`, another process's on this host) heartbeat."""
    return f"{KEY_PREFIX}{transport}:{socket.gethostname()}:{os.getpid() if pid is None else pid}"


class Heartbeat:
    """`beat(client)` from a consumer's read loop (cheap: one SET every HEARTBEAT_EVERY seconds at most), `stop()`
    once it stops. A failing beat is only logged: the consumer's own loop deals with Redis outages."""

    def __init__(self, transport: str, *, detail: dict[str, Any] | None = None) -> None:
        self.transport = transport
        self.key = heartbeat_key(transport)
        self.value = json.dumps({"transport": transport, "pid": os.getpid(), **(detail or {})})
        self._client: redis.Redis | None = None
        self._next = 0.0

    def beat(self, client: redis.Redis) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        try:
            client.set(self.key, self.value, ex=HEARTBEAT_TTL)
        except redis.RedisError as exc:
            logger.debug("heartbeat not written", extra={"error": str(exc)})
            return
        self._client, self._next = client, now + HEARTBEAT_EVERY

    def stop(self) -> None:
        """Say at once that this consumer no longer reads (a crash says it HEARTBEAT_TTL seconds later)."""
        if self._client is None:
            return
        with contextlib.suppress(redis.RedisError):  # else the key expires on its own
            self._client.delete(self.key)
        self._client = None


def consumers_reading(client: redis.Redis) -> Counter[str]:
    """How many consumers of each transport are reading now (heartbeats alive)."""
    counts: Counter[str] = Counter()
    for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=100):
        text = key.decode() if isinstance(key, bytes) else key
        counts[text[len(KEY_PREFIX) :].split(":", 1)[0]] += 1
    return counts
