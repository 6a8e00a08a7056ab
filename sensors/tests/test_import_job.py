"""The CSV import as a job (the upload page's): `readings_import_start` stores the file and queues the task; the
task imports it with progress and a summary (bad rows with their line numbers), deletes the file, and fails with a
readable reason when the file cannot be imported. Last, the whole path through a real Celery worker."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from common.exceptions import ApplicationError
from common.jobs import JobRefused
from common.models import Job, JobFile
from config.celery_app import app as celery_app
from conftest import celery_worker_process
from sensors.models import Reading, RejectedMessage
from sensors.services.csv_import import readings_import_start
from sensors.tasks import import_readings
from sensors.tests.factories import ReadingFactory, SensorFactory

DIRTY = b"""timestamp,value
2024-12-01 00:00:00,1.5
2024-12-01 00:01:00,abc
2024-12-01 00:02:00,2

not a time,3
2024-12-01 00:00:00,9
"""


def run(job_id: str, **kwargs):
    result = import_readings.apply(kwargs=kwargs, task_id=job_id)
    return result, Job.objects.get(pk=job_id)


@pytest.mark.django_db
def test_the_job_imports_the_file_reports_bad_rows_by_line_and_deletes_the_file(operator):
    SensorFactory(key="tank-1")
    job_id = readings_import_start(name="levels.csv", content=DIRTY, sensor_key="tank-1", user=operator)

    result, job = run(job_id, sensor_key="tank-1")

    assert result.state == "SUCCESS", result.traceback
    summary = {
        "file": "levels.csv",
        "sensor": "tank-1",
        "rows": 5,
        "stored": 2,
        "duplicates": 1,
        "rejected": 2,
        "skipped": 1,
        "errors": [
            {"line": 3, "reason": "value: 'abc' is not a number."},
            {"line": 6, "reason": "timestamp: 'not a time' is not an ISO 8601 date and time."},
        ],
    }
    assert result.result == summary
    assert (job.state, job.percent, job.result, job.error) == ("succeeded", 100, summary, "")
    assert job.message.endswith("rows read")
    assert Reading.objects.filter(sensor__key="tank-1").count() == 2
    assert RejectedMessage.objects.filter(transport="csv").count() == 2
    assert not JobFile.objects.exists()


@pytest.mark.django_db
def test_what_cannot_be_imported_fails_the_job_with_a_readable_reason():
    SensorFactory(key="tank-1")
    job_id = readings_import_start(name="latin1.csv", content="2024-12-01 00:00:00,1 °C\n".encode("latin-1"))
    result, job = run(job_id)
    assert result.state == "FAILURE"
    assert (job.state, job.error) == ("failed", "latin1.csv is not UTF-8 text (invalid start byte at byte 22).")
    assert not JobFile.objects.exists()

    job_id = readings_import_start(name="no-sensor.csv", content=b"timestamp,value\n2024-12-01 00:00:00,1\n")
    result, job = run(job_id)
    assert job.state == "failed"
    assert job.error.startswith("The file has no sensor column: name the sensor")


@pytest.mark.django_db
def test_start_refuses_empty_oversized_and_unknown_sensor_and_a_second_import_of_a_sensor(settings):
    settings.CSV_UPLOAD_MAX_BYTES = 100
    SensorFactory(key="tank-1")
    with pytest.raises(ApplicationError, match="The file is empty"):
        readings_import_start(name="a.csv", content=b"")
    with pytest.raises(ApplicationError, match="the limit is 100") as too_big:
        readings_import_start(name="a.csv", content=b"x" * 101)
    assert too_big.value.status_code == 413
    with pytest.raises(ApplicationError, match="No sensor 'ghost'"):
        readings_import_start(name="a.csv", content=DIRTY[:50], sensor_key="ghost")
    assert not Job.objects.exists()

    readings_import_start(name="a.csv", content=DIRTY[:50], sensor_key="tank-1")
    with pytest.raises(JobRefused):
        readings_import_start(name="b.csv", content=DIRTY[:50], sensor_key="tank-1")
    assert JobFile.objects.count() == 1  # the refused one stored nothing


# The worker reads the test's rows through its own connection: committed rows, PostgreSQL only (SQLite's test
# database lives in this process's memory).
@pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql")
def test_a_real_worker_runs_the_import_and_records_its_progress(redis_url, process_database_url, operator, settings):
    settings.JOBS_PROGRESS_INTERVAL = 0.05
    sensor = SensorFactory(key="tank-1")
    ReadingFactory(sensor=sensor, timestamp="2024-12-01T00:00:00Z", value=1.0)
    rows = 60_000  # about 2 MB: several progress reports before the end
    first = datetime(2024, 12, 1, tzinfo=UTC)  # its first row is the reading stored above: a duplicate
    content = "timestamp,value\n" + "".join(
        f"{(first + timedelta(seconds=n)).isoformat()},{n % 97}\n" for n in range(rows)
    )
    celery_app.control.purge()  # jobs left queued by an earlier, interrupted run are not this test's
    env = {"CI": "true", "DATABASE_URL": process_database_url, "REDIS_URL": redis_url, "JOBS_PROGRESS_INTERVAL": "0.05"}
    seen: set[int] = set()
    # The worker first (a solo worker busy with a job answers no ping), then the job: queued at once, since with
    # transaction=True no transaction is open.
    with celery_worker_process(name="import", env=env):
        job_id = readings_import_start(name="big.csv", content=content.encode(), sensor_key="tank-1", user=operator)
        deadline = time.monotonic() + 120
        while (job := Job.objects.get(pk=job_id)).is_active:
            if job.percent is not None:
                seen.add(job.percent)
            assert time.monotonic() < deadline, (job.state, job.percent, job.message)
            time.sleep(0.02)
    assert (job.state, job.percent, job.error) == ("succeeded", 100, ""), job.error
    assert job.result["stored"] == rows - 1
    assert job.result["duplicates"] == 1
    assert job.started_at is not None
    assert job.finished_at is not None
    assert any(0 < percent < 100 for percent in seen), seen  # the bar moved while it ran
    assert Reading.objects.filter(sensor=sensor).count() == rows
    assert not JobFile.objects.exists()
