"""The scheduled fetch of external sources: the task and the schedule's data migration."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from common.models import Job
from config.celery_app import app as celery_app
from conftest import assert_schema_complete
from sensors.models import Reading, SourceFetch
from sensors.tasks import fetch_external_sources
from sensors.tests.conftest import fixture_bytes
from sensors.tests.factories import HttpSourceFactory, SensorFactory

pytestmark = pytest.mark.django_db

SCHEDULE = "Fetch external sources"


def test_the_task_fetches_every_enabled_source(http):
    HttpSourceFactory(sensor=SensorFactory(key="a"), url="https://a.example.com/obs")
    HttpSourceFactory(sensor=SensorFactory(key="b"), url="https://b.example.com/obs")
    HttpSourceFactory(sensor=SensorFactory(key="c"), url="https://c.example.com/obs", enabled=False)
    http.get("https://a.example.com/obs", body=fixture_bytes("mixed_records.json"))
    http.get("https://b.example.com/obs", status=500, body=fixture_bytes("server_error_500.html"))

    result = fetch_external_sources.apply()

    assert result.state == "SUCCESS", result.traceback
    assert result.result == {"sources": 2, "failed": 1, "busy": 0, "stored": 3, "rejected": 5}
    assert Reading.objects.count() == 3
    assert set(SourceFetch.objects.values_list("source__sensor__key", "status")) == {("a", "success"), ("b", "failed")}
    assert not Job.objects.exists()  # a routine task, not a job on the jobs page


def test_schedule_every_ten_minutes_names_a_registered_task():
    task = PeriodicTask.objects.get(name=SCHEDULE)
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (10, IntervalSchedule.MINUTES)
    assert task.crontab is None
    assert task.expire_seconds == 600
    celery_app.loader.import_default_modules()
    assert task.task == "sensors.fetch_external_sources"
    assert task.task in celery_app.tasks


# Migrating backwards needs no open transaction (SQLite's schema editor refuses one). No serialized_rollback: the
# transactional tests before this one (pub/sub consumer) flushed the database, so the serialized rows would clash
# with the content types made again since; this test makes the rows it checks itself, in both directions.
@pytest.mark.django_db(transaction=True)
def test_schedule_migration_is_reversible():
    PeriodicTask.objects.filter(name=SCHEDULE).delete()
    call_command("migrate", "sensors", "0002", verbosity=0)
    call_command("migrate", "sensors", "0003", verbosity=0)
    assert PeriodicTask.objects.get(name=SCHEDULE).interval.every == 10
    call_command("migrate", "sensors", "0002", verbosity=0)
    assert not PeriodicTask.objects.filter(name=SCHEDULE).exists()
    # Every app: going back also unapplied other apps' migrations that depend on these, and the rest of the suite
    # runs on the whole schema.
    call_command("migrate", verbosity=0)
    assert_schema_complete()
    assert PeriodicTask.objects.filter(name=SCHEDULE).exists()
