"""End to end with a real Celery worker: readings stored by the ingestion service are detected off the request
path, in the worker, through the hand-off hook."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from config.celery_app import app as celery_app
from conftest import celery_worker_process
from detection.models import Detection, DetectorState
from detection.tests.factories import normal_series, seed_baseline
from sensors.ingest import readings_ingest

# The worker reads through its own connection: the test's rows must be committed (see rates/tests/test_worker.py).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql")

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def detection_worker(redis_url, process_database_url):
    celery_app.control.purge()
    env = {"CI": "true", "DATABASE_URL": process_database_url, "REDIS_URL": redis_url, "DETECTION_SHARDS": "2"}
    # The two shard queues, as two `detect` processes would read them (one process reads both here).
    with celery_worker_process(name="detection", env=env, queues="detection-0,detection-1") as process:
        yield process


def test_ingested_readings_are_detected_by_the_worker(detection_worker, settings):
    settings.SENSORS_INGEST_HOOKS = ["detection.handoff.readings_handoff"]
    settings.DETECTION_SHARDS = 2
    seed_baseline()
    values = normal_series(400, seed=3)
    for start in range(0, 400, 100):  # four ingest calls, four hand-off tasks
        readings_ingest(
            messages=[
                {
                    "sensor": "tank-1",
                    "value": float(v),
                    "timestamp": (START + (start + i) * timedelta(minutes=10)).isoformat(),
                }
                for i, v in enumerate(values[start : start + 100])
            ],
            transport="rest",
            decoded=True,
        )
    deadline = time.monotonic() + 60
    while Detection.objects.count() < 400 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Detection.objects.count() == 400
    state = DetectorState.objects.get(sensor__key="tank-1")
    assert state.fed == 400
    assert state.last_timestamp == START + 399 * timedelta(minutes=10)
    statuses = set(Detection.objects.values_list("status", flat=True))
    assert statuses == {"undefined", "ok"}
