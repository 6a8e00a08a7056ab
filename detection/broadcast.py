"""Typed broadcasts of detection over the channel layer: detections and sensor events per sensor, system events
for everyone. Services call these after commit; consumers forward what they receive (docs/api.md, "Live streams").

Like readings, detections go out as one message per sensor per detection batch, and only to watched groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from channels.layers import get_channel_layer

from sensors.broadcast import groups_with_members, layer_run

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
    timestamp: str
    level: float | None
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
    sensor: str | None
    message: str
    data: Any
    created_at: str


class DetectionsMessage(TypedDict):
    """`detection.detections` to `detection.<id>.detections`: one part of a sensor's new detections."""

    type: str
    sensor: str
    detections: list[DetectionPayload]


class SensorEventsMessage(TypedDict):
    """`detection.events` to `detection.<id>.events`."""

    type: str
    sensor: str
    events: list[SensorEventPayload]


class SystemEventsMessage(TypedDict):
    """`detection.system_events` to `detection.system`."""

    type: str
    events: list[SystemEventPayload]


Message = DetectionsMessage | SensorEventsMessage | SystemEventsMessage


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


async def _detections_send(layer, by_sensor: Mapping[tuple[int, str], Sequence[DetectionLike]]) -> None:
    watched = await groups_with_members(layer, [detections_group(sensor_id) for sensor_id, _ in by_sensor])
    for (sensor_id, key), detections in by_sensor.items():
        group = detections_group(sensor_id)
        if not watched[group]:
            continue
        items = [detection_payload(d) for d in sorted(detections, key=lambda d: d.timestamp)]
        for start in range(0, len(items), CHUNK):
            await layer.group_send(
                group, {"type": DETECTIONS_EVENT, "sensor": key, "detections": items[start : start + CHUNK]}
            )


def sensor_events_broadcast(events: Iterable[tuple[str, SensorEvent]]) -> None:
    """Sensor events, given as (sensor key, event), to each sensor's events group."""
    _send(
        [
            (
                sensor_events_group(event.sensor_id),
                {"type": SENSOR_EVENTS_EVENT, "sensor": key, "events": [sensor_event_payload(event)]},
            )
            for key, event in events
        ]
    )


def system_events_broadcast(events: Iterable[SystemEvent]) -> None:
    _send(
        [
            (SYSTEM_EVENTS_GROUP, {"type": SYSTEM_EVENTS_EVENT, "events": [system_event_payload(event)]})
            for event in events
        ]
    )


def _send(messages: list[tuple[str, Message]]) -> None:
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    layer_run(_send_watched, layer, messages)


async def _send_watched(layer, messages: list[tuple[str, Message]]) -> None:
    watched = await groups_with_members(layer, [group for group, _ in messages])
    for group, message in messages:  # in order: the parts of one group arrive in order
        if watched[group]:
            await layer.group_send(group, message)
