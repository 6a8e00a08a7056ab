"""The CSV upload page (/dashboard/import/): operators start `import_readings` as a job and follow it; viewers get
403 and see no link; a forged POST is refused; bad uploads get the form back with the reason."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from common.models import Job, JobFile
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

PAGE = reverse("dashboard:import")
CSV = b"timestamp,value\n2024-12-01 00:00:00,1.5\n2024-12-01 00:01:00,2\n"


def logged_in(user, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def upload(name: str = "levels.csv", content: bytes = CSV) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.mark.parametrize(("who", "status"), [("anonymous", 302), ("no role", 403), ("viewer", 403)])
def test_only_operators_may_open_or_post(who, status, django_capture_on_commit_callbacks):
    SensorFactory(key="tank-1")
    users = {"no role": lambda: UserFactory(), "viewer": lambda: UserFactory(viewer=True)}
    client = logged_in(users[who]()) if who in users else Client()
    assert client.get(PAGE).status_code == status
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(PAGE, {"file": upload(), "sensor": "tank-1", "delimiter": ","})
    assert response.status_code == status
    assert callbacks == []
    assert not Job.objects.exists()
    assert not JobFile.objects.exists()


def test_viewers_see_no_link_to_it(viewer, operator, staff_user):
    assert PAGE not in logged_in(viewer).get("/").content.decode()
    assert PAGE in logged_in(operator).get("/").content.decode()
    assert PAGE in logged_in(staff_user).get("/").content.decode()


@pytest.mark.parametrize("who", ["operator", "staff"])
def test_an_upload_starts_the_import_job_and_comes_back_to_follow_it(who, django_capture_on_commit_callbacks):
    user = UserFactory(operator=True) if who == "operator" else UserFactory(staff=True)
    SensorFactory(key="tank-1")
    client = logged_in(user)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(PAGE, {"file": upload(), "sensor": "tank-1", "delimiter": ","})
    assert response.status_code == 302
    job = Job.objects.get()
    assert response.url == f"{PAGE}?job={job.pk}"
    assert len(callbacks) == 1  # the task is queued after commit
    assert (job.kind, job.state, job.lock_key, job.started_by, job.label) == (
        "sensors.import_readings",
        "queued",
        "tank-1",
        user,
        "CSV import of levels.csv into tank-1",
    )
    stored = JobFile.objects.get(job=job)
    assert (stored.name, stored.size, bytes(stored.content)) == ("levels.csv", len(CSV), CSV)

    page = client.get(response.url).content.decode()
    assert f'data-job-id="{job.pk}"' in page
    assert "data-reload-on-finish" in page
    assert reverse("dashboard:jobs-status") in page


def test_a_forged_post_without_the_csrf_token_is_refused(operator):
    SensorFactory(key="tank-1")
    client = logged_in(operator, enforce_csrf_checks=True)
    response = client.post(PAGE, {"file": upload(), "sensor": "tank-1", "delimiter": ","})
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_a_second_import_into_the_same_sensor_is_refused_while_one_runs(operator):
    SensorFactory(key="tank-1")
    SensorFactory(key="tank-2")
    client = logged_in(operator)
    assert client.post(PAGE, {"file": upload(), "sensor": "tank-1", "delimiter": ","}).status_code == 302
    response = client.post(PAGE, {"file": upload(), "sensor": "tank-1", "delimiter": ","})
    assert response.status_code == 400
    assert "is already queued" in response.content.decode()
    assert client.post(PAGE, {"file": upload(), "sensor": "tank-2", "delimiter": ","}).status_code == 302
    # Files naming their sensors take no lock.
    for _ in range(2):
        assert client.post(PAGE, {"file": upload(), "sensor": "", "delimiter": ","}).status_code == 302
    assert Job.objects.count() == 4


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"file": upload(content=b"")}, "The submitted file is empty."),
        ({"file": upload(content=b"x" * 2049)}, "the limit is 2,048 bytes"),
        ({"file": upload(), "sensor": "ghost"}, "Select a valid choice. ghost is not one of the available choices."),
        ({}, "This field is required."),
    ],
)
def test_bad_uploads_get_the_form_back_with_the_reason(operator, settings, data, error):
    settings.CSV_UPLOAD_MAX_BYTES = 2048
    response = logged_in(operator).post(PAGE, {"delimiter": ",", **data})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Job.objects.exists()
