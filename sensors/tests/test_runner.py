"""The consumer loop's batching and its patience with the database."""

import pytest
from django.db.utils import OperationalError

from sensors.models import Reading
from sensors.sources import runner
from sensors.sources.runner import Backoff, Batcher, Stopper

pytestmark = pytest.mark.django_db

MESSAGE = b'{"sensor": "t", "value": 1, "timestamp": "2024-12-01 12:00:00"}'


def test_batch_is_due_when_full_or_after_the_wait():
    batcher = Batcher(source="pubsub", batch_size=2, max_wait=60, stopper=Stopper())
    assert not batcher.due()
    batcher.add(MESSAGE)
    assert not batcher.due()
    batcher.add(MESSAGE)
    assert batcher.due()

    patient = Batcher(source="pubsub", batch_size=100, max_wait=0, stopper=Stopper())
    patient.add(MESSAGE)
    assert patient.due()


def test_a_database_outage_is_waited_out_and_the_batch_kept(monkeypatch):
    real = runner.readings_store
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    sleeps = []
    monkeypatch.setattr(runner, "readings_store", flaky)
    monkeypatch.setattr(runner.connection, "close", lambda: None)  # keep the test's transaction
    monkeypatch.setattr(runner.time, "sleep", sleeps.append)
    flushed = []
    batcher = Batcher(source="pubsub", batch_size=10, max_wait=1, stopper=Stopper(), on_flushed=flushed.append)
    batcher.add(MESSAGE, tag="entry-1")

    result = batcher.flush()

    assert result.stored == 1
    assert len(calls) == 3
    assert sleeps == [0.5, 1.0]
    assert flushed == [["entry-1"]]
    assert Reading.objects.count() == 1
    assert batcher.messages == []


def test_backoff_doubles_to_a_ceiling():
    backoff = Backoff(initial=0.5, maximum=4)
    assert [backoff.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next() == 0.5
