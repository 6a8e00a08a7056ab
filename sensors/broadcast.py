"""Typed broadcasts of sensors over the channel layer; services never hand-build channel messages.

One message per sensor per ingest batch (never one per reading), cut into parts of `BROADCAST_CHUNK` readings,
so that a burst costs a few channel-layer calls and stays far below a channel's capacity (sizing: docs/api.md,
"Live streams"). The channel-layer plumbing (watched groups, the background loop) is `common.channels`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from channels.layers import BaseChannelLayer, get_channel_layer

from common.channels import groups_with_members, layer_message, layer_run

if TYPE_CHECKING:
    from sensors.ingest import StoredReading

BROADCAST_CHUNK = 1000
READINGS_EVENT = "sensors.readings"


class ReadingPayload(TypedDict):
    timestamp: str  # ISO 8601
    value: float


class ReadingsMessage(TypedDict):
    """A part of one sensor's readings of a batch (`READINGS_EVENT`, to `readings_group`), oldest first."""

    type: str  # READINGS_EVENT
    sensor: str  # the sensor's key
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
            ReadingsMessage(
                type=READINGS_EVENT,
                sensor=readings[0].sensor_key,
                readings=[reading_payload(r.timestamp, r.value) for r in readings[start : start + BROADCAST_CHUNK]],
            ),
        )
        for start in range(0, len(readings), BROADCAST_CHUNK)
    ]


async def _send_watched(layer: BaseChannelLayer, by_sensor: dict[int, list[StoredReading]]) -> None:
    watched = await groups_with_members(layer, [readings_group(i) for i in by_sensor])
    per_group = [_messages(i, readings) for i, readings in by_sensor.items() if watched[readings_group(i)]]
    # Groups in parallel; the parts of one group one after the other, so that they arrive in order.
    await asyncio.gather(*(_send_in_order(layer, messages) for messages in per_group))


async def _send_in_order(layer: BaseChannelLayer, messages: list[tuple[str, ReadingsMessage]]) -> None:
    for group, message in messages:
        await layer.group_send(group, layer_message(message))
