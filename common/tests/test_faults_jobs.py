"""A long job whose worker dies mid-run (kill -9, out of memory): it goes back to the queue and runs again, and the
interrupted run is marked failed instead of staying "running" forever. The real kill is scenario (e) of the fault
suite (`python -m bench.faults --scenario e`, docs/operations.md, "Guarantees under faults"); these tests pin its
two parts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from detection.models import JobRun
from detection.services.baselines import baselines_load
from detection.tasks import augment_baselines, select_baselines
from detection.tests.test_baselines_jobs import sensor_like


def test_the_baseline_jobs_return_to_the_queue_when_their_worker_is_lost():
    # acks_late: the message is acknowledged when the job ends, not when it starts, so a worker killed mid-job
    # leaves it unacknowledged; reject_on_worker_lost: the worker's main process, seeing its pool process die,
    # puts it back in the queue at once (otherwise Celery marks it failed and nobody runs it again).
    for task in (select_baselines, augment_baselines):
        assert (task.acks_late, task.reject_on_worker_lost) == (True, True), task.name


@pytest.mark.django_db
def test_the_second_delivery_of_an_interrupted_job_marks_the_interrupted_run_failed():
    baselines_load()
    sensor_like("interrupted", "high")
    # The run a killed worker left behind: started, never finished.
    JobRun.objects.create(job="select_baselines", task_id="lost-job", started_at=timezone.now() - timedelta(minutes=1))
    other = JobRun.objects.create(job="select_baselines", task_id="another-job", started_at=timezone.now())

    result = select_baselines.apply(task_id="lost-job")  # the same message, delivered again

    assert result.state == "SUCCESS", result.traceback
    interrupted, retried = JobRun.objects.filter(task_id="lost-job").order_by("started_at")
    assert (interrupted.outcome, retried.outcome, retried.sensors) == ("failed", "succeeded", 1)
    assert interrupted.finished_at is not None
    assert "interrupted" in interrupted.error
    other.refresh_from_db()
    assert other.outcome == "running"  # another job's run is not touched


def test_a_pool_process_has_time_to_load_the_detector_before_celery_gives_up_on_it():
    # Celery kills a new pool process that has not reported ready within worker_proc_alive_timeout (4 s by
    # default); warming stumpy in worker_process_init took longer on a busy machine, and each replacement of a
    # killed pool process was killed in turn (fault suite, scenario e).
    from config.celery_app import app

    assert app.conf.worker_proc_alive_timeout >= 30
