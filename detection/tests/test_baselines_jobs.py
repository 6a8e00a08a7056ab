"""The baseline jobs as recorded runs: JobRun rows, system events, the Celery tasks (in process and on a real
worker), and their schedules."""

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from django_celery_results.models import TaskResult

from common.models import Job
from config.celery_app import app as celery_app
from conftest import assert_schema_complete, celery_worker_process
from detection.data import generate_seeds
from detection.models import DetectorSettings, JobRun, SystemEvent
from detection.services.baselines import baselines_load, baselines_select
from detection.services.settings import detector_settings_ensure
from detection.tasks import augment_baselines, select_baselines
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
SCHEDULES = {
    "Select baselines": ("detection.select_baselines", 15),
    "Augment baselines": ("detection.augment_baselines", 30),
}


def sensor_like(key, name, *, days=5):
    sensor = SensorFactory(key=key)
    values = generate_seeds.series(name, days=days, rng=np.random.default_rng(7))
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + i * STEP, value=float(v)) for i, v in enumerate(values)
    )
    detector_settings_ensure([sensor.pk])
    return sensor


@pytest.mark.django_db
def test_the_selection_task_records_a_job_run_with_its_task_id_and_reports_progress():
    baselines_load()
    sensor_like("a", "low")
    sensor_like("b", "high")
    SensorFactory(key="no-settings")  # not covered: it has never been detected
    result = select_baselines.apply(task_id="select-progress-test")
    assert result.state == "SUCCESS", result.traceback
    assert result.result["counts"] == {"changed": 2}
    run = JobRun.objects.get()
    assert (run.job, run.task_id, run.outcome, run.sensors) == (
        "select_baselines",
        "select-progress-test",
        "succeeded",
        2,
    )
    assert run.started_at <= run.finished_at
    assert [o["baseline"] for o in run.summary["outcomes"]] == ["seed-low", "seed-high"]
    assert run.error == ""
    job = Job.objects.get(pk="select-progress-test")  # the job on the jobs page
    assert (job.kind, job.state, job.percent, job.lock_key) == (
        "detection.select_baselines",
        "succeeded",
        100,
        "baselines",
    )
    assert job.label == "Baseline selection (all sensors)"
    assert job.message == "Baseline selection: 2 sensors done"
    assert job.result == result.result
    kinds = list(SystemEvent.objects.values_list("job", "kind", "sensor__key").order_by("id"))
    assert kinds == [("select_baselines", "alert_success", "a"), ("select_baselines", "alert_success", "b")]


@pytest.mark.django_db
def test_the_augmentation_task_takes_sensor_ids_and_records_its_run():
    baselines_load()
    a, _ = sensor_like("a", "mid"), sensor_like("b", "mid")
    result = augment_baselines.apply(kwargs={"sensor_ids": [a.pk]}, task_id="augment-test")
    assert result.state == "SUCCESS", result.traceback
    assert [o["sensor"] for o in result.result["outcomes"]] == ["a"]
    run = JobRun.objects.get()
    assert (run.job, run.task_id, run.outcome, run.sensors) == ("augment_baselines", "augment-test", "succeeded", 1)
    assert DetectorSettings.objects.get(pk=a.pk).baseline.kind == "augmented"
    assert DetectorSettings.objects.get(sensor__key="b").baseline is None


@pytest.mark.django_db
def test_a_failing_job_is_recorded_as_failed_with_a_critical_alert(monkeypatch):
    baselines_load()
    sensor_like("a", "low")

    def broken(*args, **kwargs):
        raise RuntimeError("cleaning broke")

    monkeypatch.setattr("detection.engine.clean", broken)
    with pytest.raises(RuntimeError, match="cleaning broke"):
        baselines_select()
    run = JobRun.objects.get()
    assert (run.outcome, run.error) == ("failed", "RuntimeError: cleaning broke")
    assert run.finished_at is not None
    event = SystemEvent.objects.get()
    assert (event.kind, event.job) == ("alert_critical", "select_baselines")
    assert "Baseline selection failed: RuntimeError: cleaning broke" in event.message
    # The sensor's selection was rolled back with it: it is still due.
    assert DetectorSettings.objects.get(sensor__key="a").last_selection_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_the_schedules_exist_and_name_registered_tasks(name):
    task_name, days = SCHEDULES[name]
    task = PeriodicTask.objects.get(name=name)
    assert task.enabled
    assert task.task == task_name
    assert (task.interval.every, task.interval.period) == (days, IntervalSchedule.DAYS)
    assert task.description
    celery_app.loader.import_default_modules()
    assert task.task in celery_app.tasks


@pytest.mark.django_db
def test_schedules_edited_in_the_admin_survive_a_beat_start(monkeypatch):
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)  # the test's connection
    task = PeriodicTask.objects.get(name="Select baselines")
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=7, period=IntervalSchedule.DAYS)
    task.save()
    DatabaseScheduler(app=celery_app)  # what `celery beat` does at start
    task.refresh_from_db()
    assert task.interval.every == 7
    assert PeriodicTask.objects.get(name="Augment baselines").interval.every == 30


# Migrating backwards needs no open transaction (SQLite's schema editor refuses one). No serialized_rollback (see
# sensors/tests/test_tasks.py): this test makes the rows it checks itself, in both directions.
@pytest.mark.django_db(transaction=True)
def test_the_schedule_migrations_are_reversible():
    PeriodicTask.objects.filter(name__in=list(SCHEDULES)).delete()
    call_command("migrate", "detection", "0002", verbosity=0)
    call_command("migrate", "detection", "0004", verbosity=0)
    assert set(PeriodicTask.objects.filter(name__in=list(SCHEDULES)).values_list("name", flat=True)) == set(SCHEDULES)
    call_command("migrate", "detection", "0003", verbosity=0)
    assert list(PeriodicTask.objects.filter(name__in=list(SCHEDULES)).values_list("name", flat=True)) == [
        "Select baselines"
    ]
    call_command("migrate", "detection", "0002", verbosity=0)
    assert not PeriodicTask.objects.filter(name__in=list(SCHEDULES)).exists()
    # Every app: going back also unapplied other apps' migrations that depend on these, and the rest of the suite
    # runs on the whole schema.
    call_command("migrate", verbosity=0)
    assert_schema_complete()
    assert PeriodicTask.objects.filter(name__in=list(SCHEDULES)).count() == 2


# The worker writes through its own connections, so the test's rows must be committed (PostgreSQL only: see
# rates/tests/test_worker.py).
@pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql")
def test_a_real_worker_runs_the_selection_job_end_to_end(redis_url, process_database_url):
    baselines_load()
    sensor = sensor_like("worker", "high")
    celery_app.control.purge()  # jobs left queued by an earlier, interrupted run are not this test's
    with celery_worker_process(
        name="detection", env={"CI": "true", "DATABASE_URL": process_database_url, "REDIS_URL": redis_url}
    ):
        queued = celery_app.send_task("detection.select_baselines", kwargs={"sensor_ids": [sensor.pk]})
        deadline = time.monotonic() + 120
        while not JobRun.objects.filter(task_id=queued.id).exclude(outcome="running").exists():
            assert time.monotonic() < deadline, "the worker did not finish the job within 120 s"
            time.sleep(0.5)
    run = JobRun.objects.get(task_id=queued.id)
    assert (run.outcome, run.sensors, run.error) == ("succeeded", 1, "")
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline.name == "seed-high"
    assert SystemEvent.objects.filter(job="select_baselines", kind="alert_success", sensor=sensor).exists()
    assert TaskResult.objects.get(task_id=queued.id).status == "SUCCESS"
