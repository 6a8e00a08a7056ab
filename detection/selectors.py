"""Reads of the detection app: lists for the API, pages and live-stream history, written and tested once."""

from __future__ import annotations

from detection.models import Detection, SensorEvent, SystemEvent
from sensors.models import Sensor

# --- API and pages ------------------------------------------------------------------------------------------------


# --- live-stream history ------------------------------------------------------------------------------------------


def detections_recent(*, sensor: Sensor, limit: int) -> list[Detection]:
    """The sensor's last `limit` detections by reading time, oldest first (the history of its detections
    socket). Served by the unique (sensor, timestamp) index, read backwards."""
    if limit <= 0:
        return []
    rows = list(
        Detection.objects.filter(sensor=sensor)
        .only("timestamp", "level", "distance", "status")
        .order_by("-timestamp")[:limit]
    )
    rows.reverse()
    return rows


def sensor_events_recent(*, sensor: Sensor, limit: int) -> list[SensorEvent]:
    """The sensor's last `limit` events, oldest first, in the order they were stored (by id, which is the order
    the live stream sends them in)."""
    if limit <= 0:
        return []
    rows = list(SensorEvent.objects.filter(sensor=sensor).order_by("-id")[:limit])
    rows.reverse()
    return rows


def system_events_recent(*, limit: int) -> list[SystemEvent]:
    """The last `limit` system events, oldest first, with their sensor (its key is part of each item)."""
    if limit <= 0:
        return []
    rows = list(SystemEvent.objects.select_related("sensor").order_by("-id")[:limit])
    rows.reverse()
    return rows
