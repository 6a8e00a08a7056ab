"""Typed broadcasts of sensors over the channel layer; services never hand-build channel messages.

One message per sensor per ingest batch (never one per reading), cut into parts of `BROADCAST_CHUNK` readings,
so that a burst costs a few channel-layer calls and stays far below a channel's capacity.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

if TYPE_CHECKING:
    from sensors.services.ingest import StoredReading

logger = logging.getLogger(__name__)

BROADCAST_CHUNK = 1000
READINGS_EVENT = "sensors.readings"


def readings_group(sensor_id: int) -> str:
    """The group of a sensor's live readings (channel group names allow only ASCII letters, digits, '.-_')."""
    return f"sensors.{sensor_id}.readings"


def reading_payload(timestamp, value: float) -> dict:
    return {"timestamp": timestamp.isoformat(), "value": value}


def readings_broadcast(stored: list[StoredReading]) -> None:
    """Ingest hook: send the readings a batch stored to each sensor's live group."""
    layer = get_channel_layer()
    if layer is None or not stored:
        return
    by_sensor: dict[int, list[StoredReading]] = defaultdict(list)
    for reading in stored:
        by_sensor[reading.sensor_id].append(reading)
    messages = []
    for sensor_id, readings in by_sensor.items():
        readings.sort(key=lambda r: r.timestamp)
        for start in range(0, len(readings), BROADCAST_CHUNK):
            part = readings[start : start + BROADCAST_CHUNK]
            messages.append(
                (
                    readings_group(sensor_id),
                    {
                        "type": READINGS_EVENT,
                        "sensor": part[0].sensor_key,
                        "readings": [reading_payload(r.timestamp, r.value) for r in part],
                    },
                )
            )
    _run(_send_all, layer, messages)


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))


def _run(function, layer, *args) -> None:
    """Run a channel-layer coroutine from synchronous code.

    channels-redis keeps its connections per event loop, and `async_to_sync` from a plain thread makes a new loop
    (so a new Redis connection) at every call: several milliseconds per batch. One long-lived loop per process
    keeps the connections. The in-memory layer (embedded mode) is not thread-safe: there `async_to_sync` runs the
    send on the web server's own loop.
    """
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(function)(layer, *args)
        return
    asyncio.run_coroutine_threadsafe(function(layer, *args), _background_loop()).result(timeout=30)


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked worker process starts its own
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="channel-layer-loop", daemon=True).start()
        return _loop
