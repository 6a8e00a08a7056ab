"""Typed broadcasts of sensors over the channel layer; services never hand-build channel messages.

One message per sensor per ingest batch (never one per reading), cut into parts of `BROADCAST_CHUNK` readings,
so that a burst costs a few channel-layer calls and stays far below a channel's capacity.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

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
    async_to_sync(_send_all)(layer, messages)


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))
