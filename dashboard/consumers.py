"""Summary sockets of the dashboard: one socket per page however many sensors it shows, on the pattern of
`common.live.LiveConsumer` with the readers' rules (`sensors.consumers.ReadersConsumer`: viewers and up, session
or token, device keys refused).

Opening one socket per sensor and stream would cost a wall screen of 200 sensors 400 sockets. Instead a summary
socket joins the existing per-sensor groups itself (`extra_groups`: each shown sensor's readings and detections
groups, or its events group) and forwards a summary of each broadcast it receives. The apps' broadcasts are
unchanged: they already send to every watched group. Sensors created after the socket opened are not watched
until the page reloads.

`ws/dashboard/overview/?platform=&kind=` (the overview's filters, the API's words):

    {"type": "history", "sensors": [{"sensor", "timestamp", "value", "status", "level"}, ...]}   once, first
    {"type": "sensors", "sensors": [{"sensor", "timestamp", "value"}]}        per readings broadcast (the newest)
    {"type": "sensors", "sensors": [{"sensor", "status", "level", "detected_at"}]}   per detections broadcast

`ws/dashboard/events/?source=&kind=&sensor=` (the events page's filters):

    {"type": "history", "events": [<feed item>, ...]}   once, first, oldest first (`?history=0`: none)
    {"type": "events", "events": [<feed item>]}         per sensor or system event

A feed item has the fields of `dashboard.selectors.EVENT_FIELDS`, times as ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from common.exceptions import ApplicationError
from dashboard.selectors import EVENT_FIELDS, event_feed, overview_annotations, overview_sensors
from detection.broadcast import (
    DETECTIONS_EVENT,
    SENSOR_EVENTS_EVENT,
    SYSTEM_EVENTS_EVENT,
    SYSTEM_EVENTS_GROUP,
    detections_group,
    sensor_events_group,
)
from detection.models import SensorEvent, Status, SystemEvent
from sensors.broadcast import READINGS_EVENT, readings_group
from sensors.consumers import ReadersConsumer
from sensors.models import Sensor

OVERVIEW_GROUP = "dashboard.overview"
SUMMARY_EVENT = "dashboard.summary"  # the pattern's own live event type; nothing sends it (see `dispatch`)


def _query(scope: Mapping[str, Any]) -> dict[str, str]:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: items[-1] for name, items in values.items() if items and items[-1] and name != "history"}


class _SummaryConsumer(ReadersConsumer):
    """Forwards a summary of the per-sensor broadcasts of its `extra_groups`, by event type (`summaries`)."""

    live_event = SUMMARY_EVENT
    not_found = "Invalid filter."
    summaries: dict[str, str] = {}  # channel event type → the method that summarises it
    drop_sent: bool = False  # drop live items the history held (items with a key of their own, e.g. events)

    async def dispatch(self, message: dict) -> None:
        method = self.summaries.get(message["type"])
        if method is None:
            await super().dispatch(message)
            return
        if self.refused:
            return
        # Like the pattern's live events, summaries touch no database: no hop to the database thread.
        items = getattr(self, method)(message)
        if self.drop_sent and self.sent_keys:
            items = [item for item in items if self.item_key(item) not in self.sent_keys]
        if items:
            await self.send_json({"type": self.items, **self.head, self.items: items})


class OverviewConsumer(_SummaryConsumer):
    """`ws/dashboard/overview/`: the current state of each sensor the filters keep, then the newest reading and
    detection of each broadcast about them."""

    items = "sensors"
    summaries = {READINGS_EVENT: "readings_summary", DETECTIONS_EVENT: "detections_summary"}

    async def target(self) -> list[tuple[int, str]] | None:
        return await database_sync_to_async(self._sensors)(_query(self.scope))

    @staticmethod
    def _sensors(filters: dict[str, str]) -> list[tuple[int, str]] | None:
        known = {name: value for name, value in filters.items() if name in ("platform", "kind")}
        try:
            return list(overview_sensors(filters=known).values_list("pk", "key"))
        except ApplicationError:
            return None

    def group_name(self, target: list[tuple[int, str]]) -> str:
        return OVERVIEW_GROUP

    def extra_groups(self, target: list[tuple[int, str]]) -> list[str]:
        return [group for pk, _ in target for group in (readings_group(pk), detections_group(pk))]

    async def history(self, target: list[tuple[int, str]], limit: int) -> Sequence[Mapping[str, Any]]:
        return await database_sync_to_async(self._states)([pk for pk, _ in target])

    @staticmethod
    def _states(ids: list[int]) -> list[dict[str, Any]]:
        rows = overview_annotations(overview_sensors().filter(pk__in=ids))
        return [
            {
                "sensor": sensor.key,
                "timestamp": sensor.latest_timestamp.isoformat() if sensor.latest_timestamp else None,
                "value": sensor.latest_value,
                "status": status,
                "level": level,
            }
            for sensor, status, level, _ in rows
        ]

    def item_key(self, item: Mapping[str, Any]) -> Any:
        return item["sensor"]

    def readings_summary(self, message: dict) -> list[dict[str, Any]]:
        newest = max(message["readings"], key=lambda reading: reading["timestamp"], default=None)
        if newest is None:
            return []
        return [{"sensor": message["sensor"], "timestamp": newest["timestamp"], "value": newest["value"]}]

    def detections_summary(self, message: dict) -> list[dict[str, Any]]:
        judged = [d for d in message["detections"] if d["status"] != Status.LATE]
        if not judged:
            return []
        newest = max(judged, key=lambda detection: detection["timestamp"])
        return [
            {
                "sensor": message["sensor"],
                "status": newest["status"],
                "level": newest["level"],
                "detected_at": newest["timestamp"],
            }
        ]


class EventsConsumer(_SummaryConsumer):
    """`ws/dashboard/events/`: the feed's newest events, then each new sensor event (of the sensors the `sensor`
    filter keeps) and system event, filtered as the page is."""

    items = "events"
    history_default = 0
    history_max = 200
    drop_sent = True
    summaries = {SENSOR_EVENTS_EVENT: "sensor_events_summary", SYSTEM_EVENTS_EVENT: "system_events_summary"}
    filters: dict[str, str] = {}

    async def target(self) -> list[int] | None:
        self.filters = {k: v for k, v in _query(self.scope).items() if k in ("source", "kind", "sensor")}
        return await database_sync_to_async(self._sensor_ids)(self.filters)

    @staticmethod
    def _sensor_ids(filters: dict[str, str]) -> list[int] | None:
        try:
            event_feed(filters=filters)  # validates the filters as the page does
        except ApplicationError:
            return None
        if filters.get("source") == "system":
            return []
        sensors = Sensor.objects.all()
        if "sensor" in filters:
            sensors = sensors.filter(key=filters["sensor"])
        return list(sensors.values_list("pk", flat=True))

    def group_name(self, target: list[int]) -> str:
        return SYSTEM_EVENTS_GROUP

    def extra_groups(self, target: list[int]) -> list[str]:
        return [sensor_events_group(pk) for pk in target]

    async def history(self, target: list[int], limit: int) -> Sequence[Mapping[str, Any]]:
        if limit <= 0:
            return []
        rows = await database_sync_to_async(lambda: list(event_feed(filters=self.filters)[:limit]))()
        return [self._item(row) for row in reversed(rows)]

    def item_key(self, item: Mapping[str, Any]) -> Any:
        return (item["source"], item["event_id"])

    @staticmethod
    def _item(row: Mapping[str, Any]) -> dict[str, Any]:
        item = {name: row[name] for name in EVENT_FIELDS}
        for name in ("event_at", "stored_at"):
            item[name] = item[name].isoformat()
        return item

    def _kept(self, source: str, kind: str, sensor: str | None) -> bool:
        wanted = [k for k in self.filters.get("kind", "").split(",") if k]
        if self.filters.get("source") not in (None, source):
            return False
        if wanted and kind not in wanted:
            return False
        return "sensor" not in self.filters or sensor == self.filters["sensor"]

    def sensor_events_summary(self, message: dict) -> list[dict[str, Any]]:
        sensor = message["sensor"]
        return [
            {
                "source": "sensor",
                "event_id": event["id"],
                "event_kind": event["kind"],
                "sensor_key": sensor,
                "event_message": event["message"],
                "event_at": event["at"],
                "stored_at": event["created_at"],
            }
            for event in message["events"]
            if event["kind"] in SensorEvent.Kind.values and self._kept("sensor", event["kind"], sensor)
        ]

    def system_events_summary(self, message: dict) -> list[dict[str, Any]]:
        return [
            {
                "source": "system",
                "event_id": event["id"],
                "event_kind": event["kind"],
                "sensor_key": event["sensor"],
                "event_message": event["message"],
                "event_at": event["created_at"],
                "stored_at": event["created_at"],
            }
            for event in message["events"]
            if event["kind"] in SystemEvent.Kind.values and self._kept("system", event["kind"], event["sensor"])
        ]
