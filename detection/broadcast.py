"""Typed broadcasts of detection over the channel layer: detections and sensor events per sensor, system events
for everyone. Services call these after commit; consumers forward what they receive (docs/api.md, "Live streams").

Like readings, detections go out as one message per sensor per detection batch, and only to watched groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict

from channels.layers import BaseChannelLayer, get_channel_layer

from common.channels import group_messages_send, groups_with_members, layer_message, layer_run

if TYPE_CHECKING:
    from detection.models import SensorEvent, SystemEvent

DETECTIONS_EVENT = "detection.detections"
SENSOR_EVENTS_EVENT = "detection.events"
SYSTEM_EVENTS_EVENT = "detection.system_events"
SYSTEM_EVENTS_GROUP = "detection.system"
CHUNK = 1000


class DetectionLike(Protocol):
    """What a detection payload is built from: a `Detection`, or a row the detection batch has not saved yet."""

    @property
    def timestamp(self) -> datetime: ...
    @property
    def level(self) -> float | None: ...
    @property
    def distance(self) -> float | None: ...
    @property
    def status(self) -> str: ...


class DetectionPayload(TypedDict):
    timestamp: str  # ISO 8601, the reading's
    level: float | None  # % of the baseline's max distance
    distance: float | None
    status: str


class SensorEventPayload(TypedDict):
    id: int
    kind: str
    at: str
    level: float | None
    anomaly: int | None
    message: str
    created_at: str


class SystemEventPayload(TypedDict):
    id: int
    kind: str
    job: str
    sensor: str | None  # the sensor's key
    message: str
    data: Any
    created_at: str


class DetectionsMessage(TypedDict):
    """A part of one sensor's detections of a batch (DETECTIONS_EVENT, to `detections_group`), oldest first."""

    type: str
    sensor: str
    detections: list[DetectionPayload]


class EventsMessage(TypedDict):
    """Sensor events (SENSOR_EVENTS_EVENT, to `sensor_events_group`, with `sensor`) or system events
    (SYSTEM_EVENTS_EVENT, to SYSTEM_EVENTS_GROUP, without)."""

    type: str
    sensor: NotRequired[str]
    events: list[SensorEventPayload] | list[SystemEventPayload]


def detections_group(sensor_id: int) -> str:
    return f"detection.{sensor_id}.detections"


def sensor_events_group(sensor_id: int) -> str:
    return f"detection.{sensor_id}.events"


def detection_payload(detection: DetectionLike) -> DetectionPayload:
    return {
        "timestamp": detection.timestamp.isoformat(),
        "level": detection.level,
        "distance": detection.distance,
        "status": detection.status,
    }


def sensor_event_payload(event: SensorEvent) -> SensorEventPayload:
    return {
        "id": event.pk,
        "kind": event.kind,
        "at": event.at.isoformat(),
        "level": event.level,
        "anomaly": event.anomaly_id,
        "message": event.message,
        "created_at": event.created_at.isoformat(),
    }


def system_event_payload(event: SystemEvent) -> SystemEventPayload:
    return {
        "id": event.pk,
        "kind": event.kind,
        "job": event.job,
        "sensor": event.sensor.key if event.sensor is not None else None,
        "message": event.message,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def detections_broadcast(by_sensor: Mapping[tuple[int, str], Sequence[DetectionLike]]) -> None:
    """Each sensor's new detections (keyed by (sensor id, key); anything with a Detection's timestamp, level,
    distance and status), oldest first, to its watched group. Payloads are built only for watched groups: a batch
    holds thousands of detections, and most of the time nobody watches."""
    layer = get_channel_layer()
    if layer is None or not by_sensor:
        return
    layer_run(_detections_send, layer, by_sensor)


async def _detections_send(
    layer: BaseChannelLayer, by_sensor: Mapping[tuple[int, str], Sequence[DetectionLike]]
) -> None:
    watched = await groups_with_members(layer, [detections_group(sensor_id) for sensor_id, _ in by_sensor])
    for (sensor_id, key), detections in by_sensor.items():
        group = detections_group(sensor_id)
        if not watched[group]:
            continue
        items = [detection_payload(d) for d in sorted(detections, key=lambda d: d.timestamp)]
        for start in range(0, len(items), CHUNK):
            message = DetectionsMessage(type=DETECTIONS_EVENT, sensor=key, detections=items[start : start + CHUNK])
            await layer.group_send(group, layer_message(message))


def sensor_events_broadcast(events: Iterable[tuple[str, SensorEvent]]) -> None:
    """Sensor events, given as (sensor key, event), to each sensor's events group."""
    group_messages_send(
        [
            (
                sensor_events_group(event.sensor_id),
                EventsMessage(type=SENSOR_EVENTS_EVENT, sensor=key, events=[sensor_event_payload(event)]),
            )
            for key, event in events
        ]
    )


def system_events_broadcast(events: Iterable[SystemEvent]) -> None:
    group_messages_send(
        [
            (SYSTEM_EVENTS_GROUP, EventsMessage(type=SYSTEM_EVENTS_EVENT, events=[system_event_payload(event)]))
            for event in events
        ]
    )
