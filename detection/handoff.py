"""The ingest hook that hands stored readings to detection (SENSORS_INGEST_HOOKS).

It runs in the ingesting process after commit, so it only queues a Celery task naming the sensors and the
earliest new timestamp of each; the task detects off the request path. Nothing here imports stumpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.celery_app import app

if TYPE_CHECKING:
    from sensors.services.ingest import StoredReading

DETECT_TASK = "detection.detect_readings"


def readings_handoff(stored: list[StoredReading]) -> None:
    earliest: dict[int, object] = {}
    for reading in stored:
        first = earliest.get(reading.sensor_id)
        if first is None or reading.timestamp < first:
            earliest[reading.sensor_id] = reading.timestamp
    if earliest:
        app.send_task(DETECT_TASK, kwargs={"sensors": {str(pk): ts.isoformat() for pk, ts in earliest.items()}})
