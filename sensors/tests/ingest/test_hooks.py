"""After-store hooks: only what was stored, after commit, and a failing hook never undoes ingestion."""

import pytest

from sensors.ingest.hooks import ingest_hooks
from sensors.models import Reading
from sensors.tests.ingest.messages import ingest, msg

pytestmark = pytest.mark.django_db(transaction=False)


def test_hooks_get_only_the_stored_readings_after_commit(settings, django_capture_on_commit_callbacks):
    received = []
    settings.SENSORS_INGEST_HOOKS = ["sensors.tests.ingest.test_hooks.record_hook"]
    RECORDED.clear()
    ingest_hooks.cache_clear()
    try:
        ingest([msg(value=1)])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            ingest([msg(value=1), msg(value=2, timestamp="2024-12-01 12:01:00")])
        received = list(RECORDED)
    finally:
        ingest_hooks.cache_clear()

    assert len(callbacks) == 1
    assert [(r.sensor_key, r.timestamp.minute, r.value) for r in received] == [("temperature", 1, 2.0)]


RECORDED: list = []


def record_hook(stored):
    RECORDED.extend(stored)


def test_a_failing_hook_never_undoes_ingestion(settings, django_capture_on_commit_callbacks):
    settings.SENSORS_INGEST_HOOKS = ["sensors.tests.ingest.test_hooks.failing_hook"]
    ingest_hooks.cache_clear()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = ingest([msg()])
    finally:
        ingest_hooks.cache_clear()
    assert result.stored == 1
    assert Reading.objects.count() == 1


def failing_hook(stored):
    raise RuntimeError("listener broke")
