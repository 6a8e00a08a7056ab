"""The ingest hook that hands stored readings to detection (SENSORS_INGEST_HOOKS).

It runs in the ingesting process after commit, so it only queues a Celery task naming the sensors and the
earliest new timestamp of each; the task detects off the request path. It loads no detector code (stumpy takes
seconds to import): the `web-no-stumpy` contract in pyproject.toml checks it.

Tasks go to the shard queue of each sensor (`detection-<id mod DETECTION_SHARDS>`), each read by one
single-process worker: a sensor's detector then stays in one process's memory. Spread over processes at
random, most batches would find a detector another process had moved on, and rebuild it (about 100 times
the cost of detecting one reading).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings

from common.jobs import job_enqueue

if TYPE_CHECKING:
    from sensors.ingest import StoredReading

DETECT_TASK = "detection.detect_readings"


def detection_queue(sensor_id: int) -> str:
    return f"detection-{sensor_id % settings.DETECTION_SHARDS}"


def readings_handoff(stored: list[StoredReading]) -> None:
    earliest: dict[int, datetime] = {}
    for reading in stored:
        first = earliest.get(reading.sensor_id)
        if first is None or reading.timestamp < first:
            earliest[reading.sensor_id] = reading.timestamp
    by_queue: dict[str, dict[str, str]] = {}
    for sensor_id, timestamp in earliest.items():
        by_queue.setdefault(detection_queue(sensor_id), {})[str(sensor_id)] = timestamp.isoformat()
    for queue, sensors in by_queue.items():
        # A short kwargsrepr: Celery's own repr of a thousand-sensor argument costs milliseconds a batch. Ingest
        # hooks already run after commit: sent now.
        job_enqueue(
            task=DETECT_TASK,
            kwargs={"sensors": sensors},
            queue=queue,
            kwargsrepr=f"{{{len(sensors)} sensors}}",
            after_commit=False,
        )
