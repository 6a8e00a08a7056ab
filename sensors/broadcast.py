"""Typed broadcasts of sensors over the channel layer; services never hand-build channel messages.

One message per sensor per ingest batch (never one per reading), cut into parts of `BROADCAST_CHUNK` readings,
so that a burst costs a few channel-layer calls and stays far below a channel's capacity (sizing: docs/api.md,
"Live streams"). channels-redis drops a group message silently for a channel that is full and only notes it at
INFO; `OverCapacityWarning` turns that note into a WARNING naming the group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer

if TYPE_CHECKING:
    from sensors.services.ingest import StoredReading

logger = logging.getLogger(__name__)

BROADCAST_CHUNK = 1000
READINGS_EVENT = "sensors.readings"


class ReadingPayload(TypedDict):
    timestamp: str
    value: float


class ReadingsMessage(TypedDict):
    """`sensors.readings` to `sensors.<id>.readings`: one part of the readings a batch stored for one sensor."""

    type: str
    sensor: str
    readings: list[ReadingPayload]


def readings_group(sensor_id: int) -> str:
    """The group of a sensor's live readings (channel group names allow only ASCII letters, digits, '.-_')."""
    return f"sensors.{sensor_id}.readings"


def reading_payload(timestamp: datetime, value: float) -> ReadingPayload:
    return {"timestamp": timestamp.isoformat(), "value": value}


def readings_broadcast(stored: list[StoredReading]) -> None:
    """Ingest hook: send the readings a batch stored to each sensor's live group.

    Groups nobody is in are skipped after one membership check (one Redis command per sensor, all at once), so
    that a batch costs almost nothing when no browser watches; messages are built only for watched groups.
    """
    layer = get_channel_layer()
    if layer is None or not stored:
        return
    by_sensor: dict[int, list[StoredReading]] = defaultdict(list)
    for reading in stored:
        by_sensor[reading.sensor_id].append(reading)
    layer_run(_send_watched, layer, by_sensor)


def _messages(sensor_id: int, readings: list[StoredReading]) -> list[tuple[str, ReadingsMessage]]:
    readings.sort(key=lambda r: r.timestamp)
    return [
        (
            readings_group(sensor_id),
            {
                "type": READINGS_EVENT,
                "sensor": readings[0].sensor_key,
                "readings": [reading_payload(r.timestamp, r.value) for r in readings[start : start + BROADCAST_CHUNK]],
            },
        )
        for start in range(0, len(readings), BROADCAST_CHUNK)
    ]


async def _send_watched(layer, by_sensor: dict[int, list[StoredReading]]) -> None:
    watched = await groups_with_members(layer, [readings_group(i) for i in by_sensor])
    per_group = [_messages(i, readings) for i, readings in by_sensor.items() if watched[readings_group(i)]]
    # Groups in parallel; the parts of one group one after the other, so that they arrive in order.
    await asyncio.gather(*(_send_in_order(layer, messages) for messages in per_group))


async def _send_in_order(layer, messages: list[tuple[str, ReadingsMessage]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


async def group_has_members(layer, group: str) -> bool:
    """Whether any live channel is in `group` (unknown layer types: assume so)."""
    return (await groups_with_members(layer, [group]))[group]


async def groups_with_members(layer, groups: list[str]) -> dict[str, bool]:
    """Whether any live channel is in each of `groups` (unknown layer types: assume so). With Redis one pipelined
    round trip per server, not one per group."""
    if isinstance(layer, InMemoryChannelLayer):
        return {group: bool(layer.groups.get(group)) for group in groups}
    if not isinstance(layer, RedisChannelLayer):
        return dict.fromkeys(groups, True)
    # channels-redis keeps a group as a sorted set of channel names scored by the time they joined, and ignores
    # members older than `group_expiry` (channels_redis.core.RedisChannelLayer.group_send).
    joined_after = int(time.time()) - layer.group_expiry
    by_server: dict[int, list[str]] = {}
    for group in dict.fromkeys(groups):
        by_server.setdefault(layer.consistent_hash(group), []).append(group)
    found: dict[str, bool] = {}
    for index, names in by_server.items():
        pipeline = layer.connection(index).pipeline(transaction=False)
        for group in names:
            pipeline.zcount(layer._group_key(group), joined_after, "+inf")
        counts = await pipeline.execute()
        found.update({group: count > 0 for group, count in zip(names, counts, strict=True)})
    return found


class OverCapacityWarning(logging.Filter):
    """A filter on the `channels_redis.core` logger: its "N of M channels over capacity in group G" record (INFO:
    live messages were dropped) becomes a WARNING with `event`, `group` and `channels_over_capacity` fields.

    N counts Redis channel keys, one per receiving server process (every socket of a process shares its key), so
    one over-capacity key means every socket of that process in the group missed the message.
    """

    MESSAGE = "%s of %s channels over capacity in group %s"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.MESSAGE and isinstance(record.args, tuple) and len(record.args) == 3:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.msg = "live messages dropped: " + self.MESSAGE
            record.event = "live_messages_dropped"
            record.channels_over_capacity, _, record.group = record.args
        return True


def layer_run(function, layer, *args) -> None:
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
