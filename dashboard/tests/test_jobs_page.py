"""The jobs page (/dashboard/jobs/) and its JSON (/dashboard/jobs/status/): roles, what a job shows, filters, no
N+1."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from common.models import Job

pytestmark = pytest.mark.django_db

PAGE = reverse("dashboard:jobs")
STATUS = reverse("dashboard:jobs-status")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_jobs(operator) -> dict[str, Job]:
    now = timezone.now()
    return {
        "running": Job.objects.create(
            id="job-running",
            kind="sensors.import_readings",
            task="sensors.import_readings",
            label="CSV import of levels.csv into tank-1",
            lock_key="tank-1",
            state="running",
            percent=42,
            done=42,
            total=100,
            message="4,200 rows read",
            started_by=operator,
            started_at=now,
            heartbeat_at=now,
        ),
        "failed": Job.objects.create(
            id="job-failed",
            kind="detection.select_baselines",
            task="detection.select_baselines",
            label="Baseline selection (all sensors)",
            state="failed",
            percent=50,
            error="Lost: no sign of life from its worker since 2026-12-03 10:00:00 (the worker stopped or was killed).",
            started_at=now - timedelta(hours=1),
            finished_at=now,
        ),
        "done": Job.objects.create(
            id="job-done",
            kind="rates.update_rates",
            task="rates.update_rates",
            label="Exchange rates update",
            state="succeeded",
            percent=100,
            message="12 rates from ecb as of 2024-06-03",
            result={"rows": 12},
            finished_at=now,
        ),
    }


@pytest.mark.parametrize(("who", "status"), [("anonymous", 302), ("no role", 403), ("viewer", 200), ("operator", 200)])
def test_the_page_and_its_json_are_for_readers(who, status):
    users = {
        "no role": lambda: UserFactory(),
        "viewer": lambda: UserFactory(viewer=True),
        "operator": lambda: UserFactory(operator=True),
    }
    client = logged_in(users[who]()) if who in users else Client()
    assert client.get(PAGE).status_code == status
    assert client.get(STATUS).status_code == status


def test_every_job_shows_its_state_progress_message_starter_times_and_failure_reason(viewer, operator):
    jobs = make_jobs(operator)
    response = logged_in(viewer).get(PAGE)
    html = response.content.decode()
    for job in jobs.values():
        assert f'data-job-id="{job.pk}"' in html
        assert job.label in html
    assert "4,200 rows read" in html
    assert 'value="42"' in html
    assert operator.email in html
    assert "Lost: no sign of life from its worker" in html
    assert "system" in html  # a job nobody started (beat)
    # A viewer sees no upload link; an operator does.
    assert reverse("dashboard:import") not in html
    assert reverse("dashboard:import") in logged_in(operator).get(PAGE).content.decode()


def test_the_json_answers_the_page_rows_or_the_jobs_asked_for(viewer, operator):
    make_jobs(operator)
    client = logged_in(viewer)
    body = client.get(STATUS).json()
    assert [job["id"] for job in body["jobs"]] == ["job-done", "job-failed", "job-running"]
    running = client.get(STATUS, {"id": ["job-running", "nope"]}).json()["jobs"]
    assert len(running) == 1
    assert {key: running[0][key] for key in ("state", "percent", "message", "started_by", "active", "label")} == {
        "state": "running",
        "percent": 42,
        "message": "4,200 rows read",
        "started_by": operator.email,
        "active": True,
        "label": "CSV import of levels.csv into tank-1",
    }
    assert client.get(STATUS, {"state": "failed"}).json()["jobs"][0]["error"].startswith("Lost: ")
    assert client.get(STATUS, {"kind": "rates.update_rates"}).json()["jobs"][0]["result"] == {"rows": 12}
    assert client.get(STATUS).headers["Cache-Control"].startswith("max-age=0")


def test_filters_by_state_and_kind(viewer, operator):
    make_jobs(operator)
    html = logged_in(viewer).get(PAGE, {"state": "failed"}).content.decode()
    assert 'data-job-id="job-failed"' in html
    assert 'data-job-id="job-running"' not in html
    html = logged_in(viewer).get(PAGE, {"kind": "rates.update_rates"}).content.decode()
    assert 'data-job-id="job-done"' in html
    assert 'data-job-id="job-failed"' not in html


@pytest.mark.parametrize("count", [1, 10])
def test_the_page_and_json_take_a_fixed_number_of_queries(viewer, django_assert_num_queries, count):
    starters = [UserFactory(operator=True) for _ in range(3)]
    for n in range(count):
        Job.objects.create(id=f"job-{n}", kind="test.kind", label=f"Job {n}", started_by=starters[n % 3])
    client = logged_in(viewer)
    client.get(PAGE)  # warm the session
    # session, user, the role check's two permission reads, count, the page of jobs (with their starters), kinds
    with django_assert_num_queries(7):
        client.get(PAGE)
    with django_assert_num_queries(6):  # the same without the kinds
        client.get(STATUS)
