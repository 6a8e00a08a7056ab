"""The data page: operators start exports (then download them) and imports as jobs; one import at a time."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from archive.services.jobs import EXPORT_TASK, IMPORT_TASK
from archive.tasks import export_data, import_data
from common.models import Job
from detection.models import Anomaly, SensorEvent
from sensors.models import Installation, Platform, Reading, Sensor
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

URL = "/dashboard/data/"
T0 = datetime(2024, 12, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    settings.ARCHIVE_DIR = tmp_path / "archive"
    return settings.ARCHIVE_DIR


@pytest.fixture
def data(db):
    platform = PlatformFactory(slug="north")
    sensor = SensorFactory(key="pump-1", platform=platform)
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=T0 + timedelta(minutes=i), value=float(i)) for i in range(50)
    )
    return sensor


def run(job: Job) -> dict:
    """Run the job's task here, as the worker would (the same task, by its id)."""
    task: Any = {EXPORT_TASK: export_data, IMPORT_TASK: import_data}[job.kind]
    return task.apply(kwargs=PENDING.pop(job.id), task_id=job.id).get()


PENDING: dict[str, dict] = {}


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    """Keep the kwargs of the jobs the page starts instead of sending them to a broker; `run` runs them here."""
    monkeypatch.setattr(
        "common.jobs.job_enqueue", lambda *, task, kwargs, job_id, **_: PENDING.__setitem__(job_id, kwargs) or job_id
    )
    PENDING.clear()


def test_viewers_may_not_use_the_page_and_anonymous_users_log_in_first(client, viewer, data):
    assert client.get(URL).status_code == 302
    client.force_login(viewer)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"action": "export", "format": "jsonl"}).status_code == 403
    assert not Job.objects.exists()


def test_an_export_runs_as_a_job_and_its_file_is_downloaded(client, operator, data):
    client.force_login(operator)
    response = client.post(URL, {"action": "export", "format": "jsonl", "platform": "north"})
    assert response.status_code == 302
    job = Job.objects.get(kind=EXPORT_TASK)
    assert response["Location"] == f"{URL}?job={job.id}"
    assert job.state == "queued"
    assert job.started_by == operator
    assert PENDING[job.id] == {"format": "jsonl", "since": None, "platform": "north"}

    page = client.get(response["Location"])
    assert b'http-equiv="refresh"' in page.content  # reloads itself while the job is active

    summary = run(job)
    job.refresh_from_db()
    assert job.state == "succeeded"
    assert job.percent == 100
    assert summary["counts"]["readings"] == 50
    page = client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert reverse("dashboard:data-download", args=[job.id]) in page
    download = client.get(reverse("dashboard:data-download", args=[job.id]))
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert json.loads(lines[-1])["checksums"] == summary["checksums"]


def test_a_bad_export_form_is_400_and_queues_nothing(client, operator, data):
    client.force_login(operator)
    response = client.post(URL, {"action": "export", "format": "xml", "platform": "nowhere"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Job.objects.exists()


def _upload(content: bytes, name="archive.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def _exported(client) -> bytes:
    client.post(URL, {"action": "export", "format": "csv"})
    job = Job.objects.filter(kind=EXPORT_TASK).latest("created_at")
    run(job)
    return b"".join(client.get(reverse("dashboard:data-download", args=[job.id])).streaming_content)


def test_an_import_restores_into_an_empty_database_and_refuses_a_second_one_while_it_waits(
    client, operator, data, archive_dir
):
    client.force_login(operator)
    archive = _exported(client)
    Sensor.objects.all().delete()
    Platform.objects.all().delete()

    response = client.post(URL, {"action": "import", "file": _upload(archive, "archive.zip")})
    assert response.status_code == 302
    job = Job.objects.get(kind=IMPORT_TASK)
    assert job.lock_key == "database"
    second = client.post(URL, {"action": "import", "file": _upload(archive, "again.zip")})
    assert second.status_code == 409
    assert "already queued" in second.content.decode()
    assert Job.objects.filter(kind=IMPORT_TASK).count() == 1

    summary = run(job)
    job.refresh_from_db()
    assert job.state == "succeeded"
    assert summary["verified"] is True
    assert Reading.objects.count() == 50
    assert "Restored exactly" in client.get(URL).content.decode()
    assert list((archive_dir / "uploads").iterdir()) == []  # the upload is deleted once read


def test_an_import_into_a_database_with_data_fails_with_the_reason_unless_merging(client, operator, data):
    client.force_login(operator)
    archive = _exported(client)
    client.post(URL, {"action": "import", "file": _upload(archive, "archive.zip")})
    job = Job.objects.get(kind=IMPORT_TASK)
    with pytest.raises(Exception, match="not empty"):
        run(job)
    job.refresh_from_db()
    assert job.state == "failed"
    assert "The database is not empty" in job.error
    page = client.get(URL).content.decode()
    assert "The database is not empty" in page

    Reading.objects.filter(timestamp__gte=T0 + timedelta(minutes=40)).delete()
    client.post(URL, {"action": "import", "file": _upload(archive, "archive.zip"), "merge": "on"})
    job = Job.objects.filter(kind=IMPORT_TASK, state="queued").get()
    summary = run(job)
    assert summary["inserted"]["readings"] == 10
    assert summary["skipped"]["readings"] == 40
    assert Reading.objects.count() == 50
    assert not Anomaly.objects.exists()
    assert not SensorEvent.objects.exists()
    assert Installation.objects.count() == 0
