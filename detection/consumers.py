"""WebSocket consumers of the detection app, on the pattern of `common.live.LiveConsumer` (docs/api.md, "Live
streams"), for readers (`sensors.consumers.ReadersConsumer`): a sensor's detections, a sensor's events, and the
system events of jobs.

    {"type": "history", "sensor": "<key>", "detections": [{"timestamp", "level", "distance", "status"}, ...]}
    {"type": "detections", "sensor": "<key>", "detections": [...]}   one per detection batch of the sensor
    {"type": "history", "sensor": "<key>", "events": [{"id", "kind", "at", "level", "anomaly", "message", ...}]}
    {"type": "events", "sensor": "<key>", "events": [...]}
    {"type": "history", "events": [{"id", "kind", "job", "sensor", "message", "data", "created_at"}, ...]}
    {"type": "events", "events": [...]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from channels.db import database_sync_to_async

from detection import selectors
from detection.broadcast import (
    DETECTIONS_EVENT,
    SENSOR_EVENTS_EVENT,
    SYSTEM_EVENTS_EVENT,
    SYSTEM_EVENTS_GROUP,
    detection_payload,
    detections_group,
    sensor_event_payload,
    sensor_events_group,
    system_event_payload,
)
from sensors.consumers import ReadersConsumer
from sensors.models import Sensor
from sensors.selectors import sensor_get


class _SensorConsumer(ReadersConsumer):
    """A stream about one sensor, named by the `<key>` of the URL."""

    not_found = "No such sensor."

    async def target(self) -> Sensor | None:
        return await database_sync_to_async(sensor_get)(key=self.scope["url_route"]["kwargs"]["key"])

    def envelope(self, target: Sensor) -> dict[str, Any]:
        return {"sensor": target.key}


class SensorDetectionsConsumer(_SensorConsumer):
    """`ws/sensors/<key>/detections/`: the sensor's last detections, then each batch the detection service
    stores (one item per reading, identified by its timestamp)."""

    live_event = DETECTIONS_EVENT
    items = "detections"

    def group_name(self, target: Sensor) -> str:
        return detections_group(target.pk)

    async def history(self, target: Sensor, limit: int) -> Sequence[Mapping[str, Any]]:
        rows = await database_sync_to_async(selectors.detections_recent)(sensor=target, limit=limit)
        return [detection_payload(row) for row in rows]


class SensorEventsConsumer(_SensorConsumer):
    """`ws/sensors/<key>/events/`: the sensor's last state changes (critical, ok, not_available), then each new
    one."""

    live_event = SENSOR_EVENTS_EVENT
    items = "events"

    def group_name(self, target: Sensor) -> str:
        return sensor_events_group(target.pk)

    def item_key(self, item: Mapping[str, Any]) -> Any:
        return item["id"]  # several events may share a reading's time (`at`); ids never repeat

    async def history(self, target: Sensor, limit: int) -> Sequence[Mapping[str, Any]]:
        rows = await database_sync_to_async(selectors.sensor_events_recent)(sensor=target, limit=limit)
        return [sensor_event_payload(row) for row in rows]


class SystemEventsConsumer(ReadersConsumer):
    """`ws/events/system/`: the last events jobs reported (alert_critical, alert_success, info), then each new
    one. It watches no sensor: every reader may watch it."""

    live_event = SYSTEM_EVENTS_EVENT
    items = "events"

    async def target(self) -> bool:
        return True  # nothing to look up: never 4404

    def group_name(self, target: bool) -> str:
        return SYSTEM_EVENTS_GROUP

    def item_key(self, item: Mapping[str, Any]) -> Any:
        return item["id"]

    async def history(self, target: bool, limit: int) -> Sequence[Mapping[str, Any]]:
        rows = await database_sync_to_async(selectors.system_events_recent)(limit=limit)
        return [system_event_payload(row) for row in rows]
