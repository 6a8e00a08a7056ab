"""Sensor and system events: stored, then streamed after commit.

Sensor events are written by the detection service when a sensor's state changes (never on every reading);
system events by jobs, through `system_event_emit`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from detection.broadcast import sensor_events_broadcast, system_events_broadcast
from detection.models import SensorEvent, SystemEvent
from sensors.models import Sensor

logger = logging.getLogger(__name__)


def system_event_emit(
    *, kind: str, message: str, job: str = "", sensor: Sensor | None = None, data: dict[str, Any] | None = None
) -> SystemEvent:
    """Store a system event (`alert_critical`, `alert_success` or `info`) and stream it on `ws/events/system/`
    once the surrounding transaction commits. It is logged too, at WARNING for critical alerts."""
    if kind not in SystemEvent.Kind.values:
        raise ValueError(f"unknown system event kind {kind!r}")
    event = SystemEvent.objects.create(kind=kind, message=message[:1000], job=job, sensor=sensor, data=data or {})
    level = logging.WARNING if kind == SystemEvent.Kind.ALERT_CRITICAL else logging.INFO
    logger.log(level, "system event: %s", message, extra={"event": kind, "job": job})
    transaction.on_commit(lambda: system_events_broadcast([event]))
    return event


def sensor_events_store(events: list[tuple[str, SensorEvent]]) -> None:
    """Store sensor events given as (sensor key, unsaved event) and stream them after commit."""
    if not events:
        return
    SensorEvent.objects.bulk_create([event for _, event in events])
    transaction.on_commit(lambda: sensor_events_broadcast(events))
