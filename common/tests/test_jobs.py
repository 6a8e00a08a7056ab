"""The job toolkit (common/jobs.py): `job_enqueue` (by task name, after commit by default, on the real Redis broker),
`job_start` and its lock, `job_run`'s progress and outcome, lost jobs, the tqdm bar, the API's progress shape."""

import io
import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis
from celery.exceptions import Retry
from django.db import connections
from django.utils import timezone
from django_celery_results.models import TaskResult

from common.exceptions import ApplicationError
from common.jobs import (
    JobRefused,
    job_enqueue,
    job_progress,
    job_progress_info,
    job_run,
    job_start,
    jobs_prune,
    jobs_reap,
    tqdm_progress,
)
from common.models import Job

pytestmark = pytest.mark.django_db

TASK = "common.tests.no_such_task"  # sent by name: no task of that name needs to exist to queue it


@pytest.fixture
def broker(redis_url):
    """The broker's Redis; the queues a test used are deleted afterwards."""
    client = redis.Redis.from_url(redis_url)
    used: list[str] = []
    yield client, used
    for queue in used:
        client.delete(queue)
    client.close()


def messages(client, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_a_job_is_sent_by_name_once_the_transaction_commits(broker, django_capture_on_commit_callbacks):
    client, used = broker
    queue = f"test-jobs-{uuid.uuid4().hex[:8]}"
    used.append(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_id = job_enqueue(task=TASK, kwargs={"n": 1}, queue=queue)
    assert messages(client, queue) == [], "nothing is sent before the commit"

    [callback] = callbacks
    callback()
    [message] = messages(client, queue)
    assert message["headers"]["task"] == TASK
    assert message["headers"]["id"] == job_id


def test_after_commit_false_sends_at_once_with_the_given_kwargsrepr(broker, django_capture_on_commit_callbacks):
    client, used = broker
    queue = f"test-jobs-{uuid.uuid4().hex[:8]}"
    used.append(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_id = job_enqueue(task=TASK, kwargs={"n": 2}, queue=queue, kwargsrepr="{one number}", after_commit=False)
    assert callbacks == []
    [message] = messages(client, queue)
    assert (message["headers"]["id"], message["headers"]["kwargsrepr"]) == (job_id, "{one number}")


# ------------------------------------------------------------------------------
# The job toolkit: job_start, job_run, jobs_reap, tqdm_progress, the API's progress shape
# ------------------------------------------------------------------------------


def start(**overrides) -> str:
    options = {"kind": "test.import", "task": TASK, "kwargs": {}, "lock_key": "sensor-1", "label": "Test import"}
    return job_start(**{**options, **overrides})


def test_job_start_records_the_job_and_queues_its_task_by_name_after_commit(
    broker, django_capture_on_commit_callbacks, operator
):
    client, used = broker
    queue = f"test-jobs-{uuid.uuid4().hex[:8]}"
    used.append(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_id = job_start(kind="test.import", task=TASK, kwargs={"n": 3}, user=operator, label="Import", queue=queue)
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.kind, job.task, job.label, job.started_by) == (
        "queued",
        "test.import",
        TASK,
        "Import",
        operator,
    )
    assert messages(client, queue) == []
    [callback] = callbacks
    callback()
    [message] = messages(client, queue)
    assert (message["headers"]["task"], message["headers"]["id"]) == (TASK, job_id)


def test_a_second_job_with_the_same_lock_is_refused_while_one_is_queued_or_running(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = start()
        with pytest.raises(JobRefused) as refused:
            start()
        assert refused.value.status_code == 409
        assert refused.value.code == "job_refused"
        assert first in refused.value.detail
        assert refused.value.running.pk == first

        Job.objects.filter(pk=first).update(state="running")
        with pytest.raises(JobRefused):
            start()
        # Another lock key, another kind, or no lock at all: not refused.
        start(lock_key="sensor-2")
        start(kind="test.other")
        start(lock_key=None)
        start(lock_key=None)

        Job.objects.filter(pk=first).update(state="succeeded")
        start()  # the lock is free once the job ended
    assert Job.objects.filter(kind="test.import", lock_key="sensor-1").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_starts_racing_in_two_connections_cannot_both_win():
    # The partial unique index decides, not a read-then-write in Python: run the two starts in two threads (two
    # database connections) released at the same moment, each inside its own transaction.
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def racer() -> None:
        from django.db import transaction

        try:
            barrier.wait()
            with transaction.atomic():
                start()
                time.sleep(0.2)  # hold the transaction open: the other insert must wait, then fail
            outcomes.append("started")
        except JobRefused:
            outcomes.append("refused")
        except Exception as exc:  # SQLite may answer "locked" instead of waiting: still not two jobs
            outcomes.append(f"error {type(exc).__name__}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes.count("started") == 1, outcomes
    assert Job.objects.filter(kind="test.import", lock_key="sensor-1", state="queued").count() == 1


@pytest.mark.django_db(transaction=True)
def test_progress_is_recorded_while_the_job_runs_and_the_summary_when_it_ends(settings):
    settings.JOBS_PROGRESS_INTERVAL = 0.05
    job_id = start()
    halfway, go_on = threading.Event(), threading.Event()

    def work(progress):
        progress(0, None, "counting")
        progress(50, 200, "50 of 200 rows")
        halfway.set()
        assert go_on.wait(10)
        progress(200, 200, "200 rows")
        return {"stored": 200, "first": timezone.now().date()}

    returned: list[dict] = []
    runner = threading.Thread(
        target=lambda: (returned.append(job_run(job_id, work, kind="test.import")), connections.close_all())
    )
    runner.start()
    assert halfway.wait(10)
    deadline = time.monotonic() + 5
    while (job := Job.objects.get(pk=job_id)).percent != 25 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (job.state, job.percent, job.done, job.total, job.message) == ("running", 25, 50, 200, "50 of 200 rows")
    assert job.started_at is not None
    assert job.heartbeat_at is not None
    assert job_progress_info(job)["state"] == "PROGRESS"
    go_on.set()
    runner.join(timeout=10)

    job.refresh_from_db()
    assert (job.state, job.percent, job.message, job.error) == ("succeeded", 100, "200 rows", "")
    assert job.result == {"stored": 200, "first": timezone.now().date().isoformat()}
    assert returned == [job.result]
    assert job.finished_at is not None


def test_a_failure_is_recorded_with_a_readable_reason_and_raised_again():
    job_id = start()

    def work(progress):
        progress(3, 10, "row 3")
        raise ValueError("bad thing at row 3")

    with pytest.raises(ValueError, match="bad thing"):
        job_run(job_id, work, kind="test.import")
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.error, job.percent, job.message) == ("failed", "ValueError: bad thing at row 3", 30, "row 3")
    info = job_progress_info(job)
    assert (info["state"], info["complete"], info["success"], info["result"]) == (
        "FAILURE",
        True,
        False,
        "ValueError: bad thing at row 3",
    )
    start()  # its lock is free


def test_an_application_error_fails_the_job_with_its_words():
    job_id = start()

    def work(progress):
        raise ApplicationError("The file has no sensor column: choose the sensor.")

    with pytest.raises(ApplicationError):
        job_run(job_id, work, kind="test.import")
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.error) == ("failed", "The file has no sensor column: choose the sensor.")


def test_a_retry_puts_the_job_back_to_queued_with_the_reason():
    job_id = start()

    def work(progress):
        raise Retry("retry", exc=RuntimeError("no provider answered"), when=60)

    with pytest.raises(Retry):
        job_run(job_id, work, kind="test.import")
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.message, job.finished_at) == ("queued", "Waiting to retry: no provider answered", None)
    assert job_progress_info(job)["state"] == "RETRY"
    with pytest.raises(JobRefused):
        start()  # still holds its lock: it will run again


def test_a_job_not_started_with_job_start_is_recorded_when_its_task_runs():
    # Beat queues scheduled tasks itself: job_run records them.
    result = job_run("scheduled-1", lambda progress: {"rows": 1}, kind="test.scheduled", task=TASK, label="Scheduled")
    job = Job.objects.get(pk="scheduled-1")
    assert (job.state, job.kind, job.label, job.result, result) == (
        "succeeded",
        "test.scheduled",
        "Scheduled",
        {"rows": 1},
        {"rows": 1},
    )


def test_a_scheduled_run_whose_lock_is_held_is_recorded_as_refused_and_not_run():
    holder = start()
    ran = []
    result = job_run("scheduled-2", lambda progress: ran.append(1), kind="test.import", lock_key="sensor-1")
    assert ran == []
    job = Job.objects.get(pk="scheduled-2")
    assert job.state == "failed"
    assert job.error.startswith("refused: ")
    assert holder in job.error
    assert result == {"error": job.error}


def test_a_job_delivered_again_after_it_ended_does_not_run_twice():
    job_id = start()
    job_run(job_id, lambda progress: {"stored": 5}, kind="test.import")
    ran = []
    assert job_run(job_id, lambda progress: ran.append(1), kind="test.import") == {"stored": 5}
    Job.objects.filter(pk=job_id).update(state="failed", error="Lost: ...")
    assert job_run(job_id, lambda progress: ran.append(1), kind="test.import") == {"error": "Lost: ..."}
    assert ran == []


def test_a_job_delivered_again_while_marked_running_runs_again():
    job_id = start()
    Job.objects.filter(pk=job_id).update(state="running", started_at=timezone.now(), heartbeat_at=timezone.now())
    assert job_run(job_id, lambda progress: {"again": True}, kind="test.import") == {"again": True}
    assert Job.objects.get(pk=job_id).state == "succeeded"


def test_a_stale_lock_does_not_lock_forever(settings):
    # The worker running it died: its heartbeat stopped. The next start gives it up and takes the lock.
    settings.JOBS_STALE_SECONDS = 300
    lost = start()
    Job.objects.filter(pk=lost).update(
        state="running",
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - timedelta(seconds=301),
    )
    alive = start(lock_key="sensor-2")
    Job.objects.filter(pk=alive).update(state="running", heartbeat_at=timezone.now() - timedelta(seconds=200))

    new = start()

    job = Job.objects.get(pk=lost)
    assert job.state == "failed"
    assert job.error.startswith("Lost: no sign of life from its worker since ")
    assert job.finished_at is not None
    assert Job.objects.get(pk=new).state == "queued"
    with pytest.raises(JobRefused):
        start(lock_key="sensor-2")  # its heartbeat is recent enough


def test_reap_gives_up_jobs_celery_saw_fail_and_jobs_no_worker_took(settings):
    settings.JOBS_QUEUED_TIMEOUT_SECONDS = 3600
    killed = start()
    Job.objects.filter(pk=killed).update(state="running", heartbeat_at=timezone.now())
    TaskResult.objects.create(
        task_id=killed,
        status="FAILURE",
        result='{"exc_type": "WorkerLostError", "exc_message": ["Worker exited prematurely: signal 9 (SIGKILL)."]}',
    )
    forgotten = start(lock_key="sensor-2")
    Job.objects.filter(pk=forgotten).update(created_at=timezone.now() - timedelta(hours=2))
    recent = start(lock_key="sensor-3")

    assert jobs_reap() == 2

    killed_job, forgotten_job = Job.objects.get(pk=killed), Job.objects.get(pk=forgotten)
    assert killed_job.state == forgotten_job.state == "failed"
    assert killed_job.error.startswith("The worker reported the task failed: WorkerLostError")
    assert forgotten_job.error == "Never started: no worker took it within 60 minutes."
    assert Job.objects.get(pk=recent).state == "queued"
    assert jobs_reap() == 0


def test_prune_deletes_jobs_that_ended_long_ago(settings):
    settings.JOBS_KEEP_DAYS = 30
    old, new, active = start(lock_key=None), start(lock_key=None), start(lock_key=None)
    Job.objects.filter(pk__in=[old, new]).update(state="succeeded")
    Job.objects.filter(pk=old).update(finished_at=timezone.now() - timedelta(days=31))
    Job.objects.filter(pk=new).update(finished_at=timezone.now() - timedelta(days=29))
    assert jobs_prune() == 1
    assert set(Job.objects.values_list("pk", flat=True)) == {new, active}


def test_job_progress_answers_only_for_its_kinds():
    job_id = start()
    assert job_progress(job_id=job_id, kinds=["test.other"]) is None
    assert job_progress(job_id="no-such-job", kinds=["test.import"]) is None
    info = job_progress(job_id=job_id, kinds=["test.import"])
    assert info == {
        "state": "PENDING",
        "complete": False,
        "success": None,
        "progress": {"current": 0, "total": 100, "percent": 0.0, "description": ""},
    }


def test_tqdm_progress_draws_the_same_protocol_as_a_bar():
    out = io.StringIO()
    with tqdm_progress(file=out, unit="row") as progress:
        progress(0, None, "counting")
        progress(40, 80, "40 rows")
        progress(80, 80, "80 rows")
    text = out.getvalue()
    assert "80/80" in text
    assert "80 rows" in text
    assert "100%" in text


def test_the_reap_task_runs_every_minute_and_gives_up_lost_jobs(settings):
    from django_celery_beat.models import PeriodicTask

    from common.tasks import reap_jobs
    from config.celery_app import app as celery_app

    schedule = PeriodicTask.objects.get(name="Give up lost jobs")
    assert (schedule.task, schedule.interval.every, schedule.interval.period, schedule.enabled) == (
        "common.reap_jobs",
        1,
        "minutes",
        True,
    )
    celery_app.loader.import_default_modules()
    assert schedule.task in celery_app.tasks

    settings.JOBS_STALE_SECONDS = 60
    lost = start()
    Job.objects.filter(pk=lost).update(state="running", heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert reap_jobs.apply().result == {"given_up": 1, "deleted": 0}
    assert Job.objects.get(pk=lost).state == "failed"


def test_tqdm_progress_redraws_one_line_on_a_command_s_stderr():
    from django.core.management.base import OutputWrapper

    out = io.StringIO()
    with tqdm_progress(file=OutputWrapper(out), unit="row") as progress:
        progress(10, 20, "10 rows")
        progress(20, 20, "20 rows")
    text = out.getvalue()
    assert "\r" in text
    assert text.count("\n") <= 1, text  # redrawn in place, not one line a redraw
