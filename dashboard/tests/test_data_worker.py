"""The data page's jobs run by a real Celery worker on the test database: export, download, import, progress."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from archive.services.jobs import EXPORT_TASK, IMPORT_TASK
from common.models import Job
from config.celery_app import app as celery_app
from conftest import celery_worker_process
from sensors.models import Platform, Reading, Sensor
from sensors.tests.factories import PlatformFactory, SensorFactory

# serialized_rollback: a transactional test's flush removes the role groups the data migrations made.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

URL = "/dashboard/data/"


@pytest.fixture
def archive_worker(redis_url, process_database_url, settings, tmp_path):
    settings.ARCHIVE_DIR = tmp_path / "archive"
    env = {
        "CI": "true",
        "DATABASE_URL": process_database_url,
        "REDIS_URL": redis_url,
        "ARCHIVE_DIR": str(settings.ARCHIVE_DIR),
        "JOBS_PROGRESS_INTERVAL": "0.1",
    }
    celery_app.control.purge()  # jobs left queued by an earlier, interrupted run are not this test's
    with celery_worker_process(name="archive", env=env) as process:
        yield process


def wait(kind: str) -> Job:
    deadline = time.monotonic() + 90
    while True:
        job = Job.objects.filter(kind=kind).latest("created_at")
        if not job.is_active:
            return job
        assert time.monotonic() < deadline, (job.state, job.percent, job.message)
        time.sleep(0.2)


def test_export_then_import_through_the_worker(client, operator, archive_worker):
    sensor = SensorFactory(key="pump-1", platform=PlatformFactory(slug="north"))
    start = datetime(2024, 12, 1, tzinfo=UTC)
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=start + timedelta(seconds=i), value=i / 7) for i in range(25_000)
    )
    client.force_login(operator)

    assert client.post(URL, {"action": "export", "format": "jsonl"}).status_code == 302
    export = wait(EXPORT_TASK)
    assert export.state == "succeeded", export.error
    assert (export.percent, export.result["counts"]["readings"]) == (100, 25_000)
    archive = b"".join(client.get(reverse("dashboard:data-download", args=[export.id])).streaming_content)

    Sensor.objects.all().delete()
    Platform.objects.all().delete()
    upload = SimpleUploadedFile("sensors.jsonl", archive)
    assert client.post(URL, {"action": "import", "file": upload}).status_code == 302
    restored = wait(IMPORT_TASK)
    assert restored.state == "succeeded", restored.error
    assert restored.result["verified"] is True
    assert Reading.objects.filter(sensor__key="pump-1").count() == 25_000
    assert "Restored exactly" in client.get(URL).content.decode()
