"""The consumer loop's batching and its patience with the database."""

import time
from typing import Any

import pytest
from django.db import connection
from django.db.utils import OperationalError

from sensors.models import Reading
from sensors.transports import runner
from sensors.transports.runner import Backoff, Batcher, Stopper

pytestmark = pytest.mark.django_db

MESSAGE = b'{"sensor": "t", "value": 1, "timestamp": "2024-12-01 12:00:00"}'


def test_batch_is_due_when_full_or_after_the_wait():
    batcher = Batcher(transport="pubsub", batch_size=2, max_wait=60, stopper=Stopper())
    assert not batcher.due()
    batcher.add(MESSAGE)
    assert not batcher.due()
    batcher.add(MESSAGE)
    assert batcher.due()

    patient = Batcher(transport="pubsub", batch_size=100, max_wait=0, stopper=Stopper())
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
    batcher = Batcher(transport="pubsub", batch_size=10, max_wait=1, stopper=Stopper(), on_flushed=flushed.append)
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


def _message(i: int) -> bytes:
    return b'{"sensor": "t", "value": %d, "timestamp": "2024-12-01T12:%02d:%02dZ"}' % (i, i // 60, i % 60)


@pytest.mark.django_db(transaction=True)
def test_writer_threads_store_every_batch_and_close_waits_for_them():
    flushed = []
    batcher = Batcher(
        transport="stream", batch_size=10, max_wait=60, stopper=Stopper(), on_flushed=flushed.extend, writers=2
    )
    for i in range(200):
        batcher.add(_message(i), tag=i)
        if batcher.due():
            assert batcher.flush() is None  # queued for a writer, not written here
    batcher.close()

    assert sorted(flushed) == list(range(200))  # every batch acknowledged, each once
    assert (batcher.total.received, batcher.total.stored, batcher.batches) == (200, 200, 20)
    assert Reading.objects.count() == 200


@pytest.mark.django_db(transaction=True)
def test_an_error_in_a_writer_thread_reaches_the_reader():
    def broken(tags):
        raise ConnectionError("acknowledgement failed")

    batcher = Batcher(transport="stream", batch_size=1, max_wait=60, stopper=Stopper(), on_flushed=broken, writers=1)
    batcher.add(_message(1))
    batcher.flush()
    deadline = time.monotonic() + 5
    while batcher._writer._error is None and time.monotonic() < deadline:  # the writer fails in its own thread
        time.sleep(0.01)
    with pytest.raises(ConnectionError, match="acknowledgement failed"):
        batcher.check()
    with pytest.raises(ConnectionError):
        batcher.close()


def _connection_recorder() -> tuple[Batcher, list[Any]]:
    """A one-writer batcher that records, after each commit, the writer's database connection and backend."""
    seen: list[Any] = []

    def record(tags: list[Any]) -> None:  # runs in the writer thread, after commit
        pid = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
        seen.append((connection.connection, pid))

    batcher = Batcher(transport="stream", batch_size=1, max_wait=60, stopper=Stopper(), on_flushed=record, writers=1)
    return batcher, seen


def _store_one(batcher: Batcher, seen: list[Any], i: int) -> None:
    before = len(seen)
    batcher.add(_message(i))
    batcher.flush()
    deadline = time.monotonic() + 10
    while len(seen) == before:
        batcher.check()
        assert time.monotonic() < deadline, "the writer did not store the batch"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_a_writer_keeps_its_connection_from_batch_to_batch():
    """A consumer is one long-lived client: it does not reconnect for every batch, whatever CONN_MAX_AGE says
    (0 here, Django's default, which made it do just that)."""
    assert connection.settings_dict["CONN_MAX_AGE"] == 0
    batcher, seen = _connection_recorder()
    for i in range(3):
        _store_one(batcher, seen, i)
    batcher.close()

    assert seen[0][0] is seen[1][0] is seen[2][0]
    assert Reading.objects.count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql")  # a server that ends the connection
def test_a_writer_replaces_a_connection_the_server_ended(monkeypatch):
    """What a PostgreSQL restart (or an administrator's pg_terminate_backend) does between two batches."""
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)  # the retry's backoff
    batcher, seen = _connection_recorder()
    _store_one(batcher, seen, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [seen[0][1]])
        assert cursor.fetchone()[0]
    _store_one(batcher, seen, 1)
    batcher.close()

    assert seen[1][1] != seen[0][1]  # a new backend stored the batch
    assert Reading.objects.count() == 2
