"""The no-loss Redis Streams path, end to end against the real Redis and database.

In-process tests run `consume_readings --source stream` in the main thread (so SIGTERM reaches its handler) while
a helper thread plays the devices. The crash tests run the consumer as its own process against the test database
and kill it with SIGKILL: nothing may be lost and nothing stored twice.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from sensors.models import Reading, RejectedMessage, Sensor
from sensors.tests.transports.consuming import run_consumer_until, wait_until
from sensors.transports import stream as stream_module
from sensors.transports.heartbeat import heartbeat_key
from sensors.transports.stream import StreamOptions, StreamReader, entry_message

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2024, 12, 1, tzinfo=UTC)


@pytest.fixture
def stream(redis_url):
    """A stream key of this test's own; deleted afterwards."""
    key = f"test_stream_{uuid.uuid4().hex[:12]}"
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()


def reading(i: int, *, sensor: str = "flow") -> str:
    return json.dumps({"sensor": sensor, "value": i / 10, "timestamp": (START + timedelta(seconds=i)).isoformat()})


def publish(client, stream: str, count: int, *, offset: int = 0, sensor: str = "flow") -> None:
    for start in range(offset, offset + count, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + 1000, offset + count)):
            pipe.xadd(stream, {"data": reading(i, sensor=sensor)})
        pipe.execute()


def group_info(client, stream: str, group: str = "sensorhub") -> dict:
    groups = [g for g in client.xinfo_groups(stream) if g["name"] in (group, group.encode())]
    return groups[0] if groups else {}


def all_acknowledged(client, stream: str, total: int, group: str = "sensorhub") -> bool:
    """Every entry of the stream (at least `total`) delivered to the group and acknowledged."""
    info = group_info(client, stream, group)
    if not info or info["pending"]:
        return False
    last = client.xinfo_stream(stream)["last-generated-id"]
    read = info["entries-read"]  # None when Redis cannot tell (a group made again on a non-empty stream)
    return info["last-delivered-id"] == last and (read is None or read >= total)


def run_consumer(redis_url: str, stream: str, devices, *, extra: tuple = (), batch_ms: int = 50) -> str:
    """Run the command until `devices(client)` returns (once the consumer has created its group), then SIGTERM;
    the command's stdout."""
    client = redis.Redis.from_url(redis_url)
    try:
        return run_consumer_until(
            "--source", "stream", "--redis-url", redis_url, "--stream", stream, "--batch-ms", str(batch_ms), *extra,
            ready=lambda: bool(client.exists(stream) and client.xinfo_groups(stream)),
            devices=lambda: devices(client),
        )  # fmt: skip
    finally:
        client.close()


# --- in-process --------------------------------------------------------------------------------------------------


def test_both_entry_forms_are_stored_and_acknowledged(redis_url, stream):
    def devices(client):
        client.xadd(stream, {"data": '{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}'})
        client.xadd(stream, {"sensor": "temperature", "value": "14.5", "timestamp": "2024-12-01 12:00:01"})
        wait_until(lambda: all_acknowledged(client, stream, 2))

    out = run_consumer(redis_url, stream, devices)

    stored = list(Reading.objects.order_by("timestamp").values_list("sensor__key", "value", "timestamp"))
    assert stored == [
        ("temperature", 14.0, datetime(2024, 12, 1, 12, 0, tzinfo=UTC)),
        ("temperature", 14.5, datetime(2024, 12, 1, 12, 0, 1, tzinfo=UTC)),
    ]
    assert "2 received, 2 stored, 0 duplicates, 0 rejected" in out


def test_bad_entries_are_rejected_acknowledged_and_the_consumer_goes_on(redis_url, stream):
    bad = [
        {"data": "{not json"},
        {"data": "[]"},
        {"data": '{"sensor": "gas", "value": NaN, "timestamp": "2024-12-01 12:00:00"}'},
        {"sensor": "gas", "value": "fourteen", "timestamp": "2024-12-01 12:00:00"},
        {"sensor": "gas", "value": "1"},
        {"value": "1", "timestamp": "2024-12-01 12:00:00"},
        {"data": b"\xff\xfe binary"},
        {"data": "x" * 100_000},
    ]

    def devices(client):
        for i in range(40):
            client.xadd(stream, {"data": reading(i, sensor="gas")})
            client.xadd(stream, bad[i % len(bad)])
        wait_until(lambda: all_acknowledged(client, stream, 80))
        client.xadd(stream, {"data": reading(1000, sensor="gas")})  # still alive
        wait_until(lambda: all_acknowledged(client, stream, 81))

    out = run_consumer(redis_url, stream, devices)

    assert Reading.objects.count() == 41
    assert RejectedMessage.objects.filter(transport="stream").count() == 40
    assert not RejectedMessage.objects.filter(reason="").exists()
    assert "81 received, 41 stored, 0 duplicates, 40 rejected" in out


def test_sigterm_stores_and_acknowledges_what_is_held(redis_url, stream):
    def devices(client):
        publish(client, stream, 5)
        deadline = time.monotonic() + 10
        while group_info(client, stream)["pending"] < 5:  # read, held: the batch is not due for 60 s
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert not Reading.objects.exists()

    out = run_consumer(redis_url, stream, devices, batch_ms=60_000)

    assert Reading.objects.count() == 5
    assert "5 received, 5 stored" in out
    client = redis.Redis.from_url(redis_url)
    assert group_info(client, stream)["pending"] == 0
    client.close()


def test_a_stream_deleted_under_the_consumer_is_made_again(redis_url, stream):
    def devices(client):
        publish(client, stream, 100)
        wait_until(lambda: all_acknowledged(client, stream, 100))
        client.delete(stream)  # an operator's DEL: the group goes with it
        deadline = time.monotonic() + 10
        while not (client.exists(stream) and client.xinfo_groups(stream)):
            assert time.monotonic() < deadline, "the consumer did not make the group again"
            time.sleep(0.02)
        publish(client, stream, 100, offset=100)
        wait_until(lambda: all_acknowledged(client, stream, 100))

    out = run_consumer(redis_url, stream, devices)

    assert Reading.objects.count() == 200
    assert "200 received, 200 stored" in out


def test_a_crash_after_commit_and_before_the_acknowledgement_loses_nothing_and_stores_nothing_twice(
    redis_url, stream, monkeypatch
):
    """The consumer dies between committing a batch and acknowledging it (the worst moment): the entries stay
    pending; the restarted consumer reads them again, finds them stored and counts them as duplicates."""
    client = redis.Redis.from_url(redis_url)
    publish(client, stream, 500)

    class Killed(BaseException):
        pass

    real_ack = StreamReader.ack

    def die(self, ids):
        raise Killed

    monkeypatch.setattr(StreamReader, "ack", die)
    with pytest.raises(Killed):
        call_command("consume_readings", "--source", "stream", "--redis-url", redis_url, "--stream", stream,
                     stdout=StringIO(), stderr=StringIO())  # fmt: skip
    assert Reading.objects.count() == 500  # committed ...
    assert group_info(client, stream)["pending"] == 500  # ... but never acknowledged

    monkeypatch.setattr(StreamReader, "ack", real_ack)
    out = run_consumer(redis_url, stream, lambda c: wait_until(lambda: all_acknowledged(c, stream, 500)))

    assert Reading.objects.count() == 500
    assert "500 received, 0 stored, 500 duplicates" in out
    client.close()


def test_entries_left_pending_by_a_dead_consumer_are_claimed(redis_url, stream):
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(stream, "sensorhub", id="0", mkstream=True)
    publish(client, stream, 300)
    # A consumer that read everything and died before acknowledging anything.
    assert len(client.xreadgroup("sensorhub", "dead-one", {stream: ">"}, count=1000)[0][1]) == 300
    time.sleep(0.2)

    out = run_consumer(
        redis_url,
        stream,
        lambda c: wait_until(lambda: group_info(c, stream)["pending"] == 0),
        extra=("--consumer", "survivor", "--claim-idle-ms", "100"),
    )

    assert Reading.objects.count() == 300
    assert "300 received, 300 stored" in out
    client.close()


def test_acknowledged_entries_are_trimmed_but_not_those_another_group_still_needs(redis_url, stream):
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(stream, "archive", id="0", mkstream=True)
    publish(client, stream, 100)
    client.xreadgroup("archive", "a", {stream: ">"}, count=40)  # the archive group holds 40 pending

    options = StreamOptions(stream=stream, group="sensorhub", consumer="c", count=1000, claim_idle_ms=60_000)
    reader = StreamReader(client, options)
    reader.group_ensure()
    entries = reader.read(block_ms=10)
    reader.ack([entry_id for entry_id, _ in entries])
    assert client.xlen(stream) == 100  # the archive group has not acknowledged its first entries yet

    pending = client.xpending_range(stream, "archive", min="-", max="+", count=100)
    client.xack(stream, "archive", *[p["message_id"] for p in pending])
    reader.trim()
    assert client.xlen(stream) == 61  # the archive group was last delivered entry 40: 40 to 100 stay

    client.xreadgroup("archive", "a", {stream: ">"}, count=1000)  # now 41 to 100 are pending there
    reader.trim()
    assert client.xlen(stream) == 60

    client.xack(stream, "archive", *[entry_id for entry_id, _ in client.xrange(stream)])
    reader.trim()
    assert client.xlen(stream) == 1  # every group acknowledged everything; the last delivered entry stays
    client.close()


def test_entry_message_reads_both_forms():
    assert entry_message([b"data", b'{"x": 1}']) == b'{"x": 1}'
    assert entry_message({b"data": b'{"x": 1}'}) == b'{"x": 1}'
    assert entry_message([b"sensor", b"gas", b"value", b"1.5", b"timestamp", b"2024-12-01 12:00:00"]) == {
        "sensor": "gas",
        "value": "1.5",
        "timestamp": "2024-12-01 12:00:00",
    }
    assert entry_message({b"sensor": b"gas", b"value": b"\xff"}) == {"sensor": "gas", "value": "\ufffd"}


# --- real processes ----------------------------------------------------------------------------------------------


def consumer_process(redis_url: str, database_url: str, stream: str, *, consumer: str, extra: tuple = ()):
    return subprocess.Popen(
        [sys.executable, "manage.py", "consume_readings", "--source", "stream", "--stream", stream,
         "--consumer", consumer, "--batch-size", "500", "--batch-ms", "20", *extra],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "CI": "true",
             "DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def stop(process, redis_url: str) -> str:
    """SIGTERM once the consumer reads (a process still starting up has no handler for it yet and dies of it: seen
    when the work was all done before the last restart), then its output after a clean stop."""
    client = redis.Redis.from_url(redis_url)
    key = heartbeat_key("stream", pid=process.pid)
    try:
        wait_until(lambda: process.poll() is not None or client.exists(key), timeout=60)
    finally:
        client.close()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()


def test_kill_9_at_random_moments_loses_nothing_and_stores_nothing_twice(redis_url, stream, process_database_url):
    total = 30_000
    client = redis.Redis.from_url(redis_url)
    Sensor.objects.create(key="flow")
    publisher = threading.Thread(target=publish, args=(client, stream, total))
    process = consumer_process(redis_url, process_database_url, stream, consumer="c1")
    publisher.start()
    rng = random.Random(9)  # noqa: S311 (timing jitter, not security)
    kills = 0
    try:
        while kills < 4:
            # Let it store something, then kill it without warning, wherever it is, and start it again.
            before = Reading.objects.count()
            wait_until(lambda b=before: Reading.objects.count() > b + 500, timeout=60)
            time.sleep(rng.uniform(0, 0.3))
            process.kill()
            process.wait()
            kills += 1
            process = consumer_process(redis_url, process_database_url, stream, consumer="c1")
        publisher.join()
        wait_until(lambda: all_acknowledged(client, stream, total), timeout=120)
    finally:
        out = stop(process, redis_url)
        client.close()

    assert Reading.objects.count() == total
    assert Reading.objects.values("timestamp").distinct().count() == total
    assert set(Reading.objects.values_list("value", flat=True)) == {i / 10 for i in range(total)}
    assert "Stopped:" in out


def test_the_consumer_waits_out_lost_database_connections_and_loses_nothing(redis_url, stream, process_database_url):
    """What a PostgreSQL restart does to the consumer: its connections are cut mid-batch, three times."""
    total = 20_000
    client = redis.Redis.from_url(redis_url)
    Sensor.objects.create(key="flow")

    def devices():
        for start in range(0, total, 500):
            publish(client, stream, 500, offset=start)
            time.sleep(0.05)

    publisher = threading.Thread(target=devices)
    process = consumer_process(redis_url, process_database_url, stream, consumer="c1")
    publisher.start()
    cut = 0
    try:
        while cut < 3:
            before = Reading.objects.count()
            wait_until(lambda b=before: Reading.objects.count() > b, timeout=60)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                cut += cursor.fetchone()[0] > 0
            time.sleep(0.2)
        publisher.join()
        wait_until(lambda: all_acknowledged(client, stream, total), timeout=120)
        assert process.poll() is None  # it waited, it did not die
    finally:
        out = stop(process, redis_url)
        client.close()

    assert Reading.objects.count() == total
    assert "Stopped:" in out


def test_two_consumers_in_one_group_split_the_work_without_overlap(redis_url, stream, process_database_url):
    total = 20_000
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(stream, "sensorhub", id="0", mkstream=True)
    Sensor.objects.create(key="flow")
    first = consumer_process(redis_url, process_database_url, stream, consumer="one")
    second = consumer_process(redis_url, process_database_url, stream, consumer="two")
    try:
        deadline = time.monotonic() + 60
        while len(client.xinfo_consumers(stream, "sensorhub")) < 2:  # both are reading
            assert time.monotonic() < deadline, "the consumers did not start"
            time.sleep(0.05)
        publish(client, stream, total)
        wait_until(lambda: all_acknowledged(client, stream, total), timeout=120)
    finally:
        outputs = [stop(first, redis_url), stop(second, redis_url)]
        client.close()

    received = [int(out.split("Stopped: ")[1].split(" received")[0]) for out in outputs]
    assert sum(received) == total  # every entry was delivered to exactly one of them ...
    assert min(received) > 0  # ... and both took part
    assert all(" 0 duplicates" in out for out in outputs)
    assert Reading.objects.count() == total


def test_the_consumer_reconnects_when_redis_drops_it(redis_url, stream, monkeypatch):
    monkeypatch.setattr(stream_module.Backoff, "next", lambda self: 0.1)

    def devices(client):
        publish(client, stream, 1000)
        wait_until(lambda: all_acknowledged(client, stream, 1000))
        # What a Redis restart does to the consumer: its connection is closed under it.
        ours = [c["id"] for c in client.client_list() if c["name"].startswith("sensorhub-stream-")]
        assert ours
        for client_id in ours:
            client.client_kill_filter(_id=client_id)
        publish(client, stream, 1000, offset=1000)
        wait_until(lambda: all_acknowledged(client, stream, 2000))

    run_consumer(redis_url, stream, devices)

    assert Reading.objects.count() == 2000


def test_nul_surrogates_and_deep_nesting_are_rejected_and_the_consumer_goes_on(redis_url, stream):
    hostile = [
        {"data": '{"sensor": "\\ud800", "value": 1, "timestamp": "2024-12-01 12:00:00"}'},
        {"data": '{"sensor": "gas", "value": "\\u0000", "timestamp": "2024-12-01 12:00:00"}'},
        {"data": '{"sensor": "gas", "value": 1, "timestamp": "2024-12-01 12:00:00\\u0000+05:00"}'},
        {"data": "[" * 30_000 + "]" * 30_000},
        {"sensor": b"gas\x00", "value": "1", "timestamp": "2024-12-01 12:00:00"},
        {"sensor": b"\xed\xa0\x80", "value": "1", "timestamp": "2024-12-01 12:00:00"},
        {"sensor": "gas", "value": b"\x00", "timestamp": "2024-12-01 12:00:00"},
        {"sensor": "gas", "value": "1", "timestamp": b"\xed\xb0\x80\x00"},
        {"sensor": "gas", "value": "1", "timestamp": "2024-12-01 12:00:00", "note": "x" * 70_000},
    ]

    def devices(client):
        for i, entry in enumerate(hostile):
            client.xadd(stream, entry)
            client.xadd(stream, {"data": reading(i, sensor="gas")})
        wait_until(lambda: all_acknowledged(client, stream, 2 * len(hostile)))
        client.xadd(stream, {"data": reading(1000, sensor="gas")})  # still alive
        wait_until(lambda: all_acknowledged(client, stream, 2 * len(hostile) + 1))

    out = run_consumer(redis_url, stream, devices)

    assert Reading.objects.count() == len(hostile) + 1
    rejected = RejectedMessage.objects.filter(transport="stream")
    assert rejected.count() == len(hostile)
    assert not rejected.filter(reason="").exists()
    assert rejected.filter(reason__startswith="sensor: The sensor key holds a NUL").count() == 2
    assert rejected.filter(reason__contains="the limit is 65536").count() == 1
    total = 2 * len(hostile) + 1
    assert f"{total} received, {len(hostile) + 1} stored, 0 duplicates, {len(hostile)} rejected" in out
