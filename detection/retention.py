"""Retention of the detection app's per-reading rows, called by the sensors retention job through
`SENSORS_RETENTION_HOOKS` and `SENSORS_RETENTION_REPORTERS` (sensors may not import detection).

Detections (one verdict per reading) follow their readings' bounds; anomalies, sensor events and system events
are kept for ever.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from detection.models import Detection, SystemEvent
from detection.services.events import system_event_emit

if TYPE_CHECKING:
    from sensors.services.retention import RetentionReport

JOB = "apply_retention"


def detections_expire(*, sensor_ids: list[int], bound: datetime, dry_run: bool) -> dict[str, int]:
    """Delete (or count) the detections of `sensor_ids` stamped before `bound`, in batches of
    `SENSORS_RETENTION_BATCH` rows per sensor and statement."""
    older = Detection.objects.filter(sensor_id__in=sensor_ids, timestamp__lt=bound)
    if dry_run:
        return {"detections": older.count()}
    batch = settings.SENSORS_RETENTION_BATCH
    deleted = 0
    for sensor_id in sensor_ids:
        mine = Detection.objects.filter(sensor_id=sensor_id, timestamp__lt=bound)
        while True:
            last = mine.order_by("timestamp").values_list("timestamp", flat=True)[batch - 1 : batch].first()
            with transaction.atomic():
                count, _ = (mine if last is None else mine.filter(timestamp__lte=last)).delete()
            deleted += count
            if last is None:
                break
    return {"detections": deleted}


def retention_report(report: RetentionReport) -> None:
    """One `info` system event saying what the retention run dropped (streamed to operators)."""
    system_event_emit(kind=SystemEvent.Kind.INFO, job=JOB, message=report.summary(), data=report.as_dict())
