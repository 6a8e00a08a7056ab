"""The old Redis pub/sub contract, end to end against the real Redis and database.

The consumer runs in the main thread (as `manage.py consume_readings` does, so SIGTERM reaches its handler); a
helper thread plays the devices and, at the end, sends the process SIGTERM.
"""

import json
import time

import pytest
import redis
from django.core.management import CommandError, call_command

from sensors.models import Reading, RejectedMessage, Sensor
from sensors.tests.transports.consuming import holds, run_consumer_until, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CHANNEL = "sensor_stream_test"


def run_consumer(redis_url: str, devices, *, batch_ms: int = 50) -> str:
    """Run the command until `devices(client)` returns, then SIGTERM; the command's stdout."""
    client = redis.Redis.from_url(redis_url)
    try:
        return run_consumer_until(
            "--source", "pubsub", "--redis-url", redis_url, "--channel", CHANNEL, "--batch-ms", str(batch_ms),
            ready=lambda: client.pubsub_numsub(CHANNEL)[0][1] > 0,
            devices=lambda: devices(client),
        )  # fmt: skip
    finally:
        client.close()


def test_old_contract_ends_as_a_stored_reading(redis_url):
    def devices(client):
        client.publish(CHANNEL, '{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}')
        wait_until(lambda: Reading.objects.exists())

    out = run_consumer(redis_url, devices)

    reading = Reading.objects.select_related("sensor").get()
    assert (reading.sensor.key, reading.value, reading.timestamp.isoformat()) == (
        "temperature",
        14.0,
        "2024-12-01T12:00:00+00:00",
    )
    assert "1 received, 1 stored" in out


def test_malformed_burst_is_rejected_while_valid_messages_are_stored_and_the_consumer_lives(redis_url):
    bad = [
        "{not json",
        "[]",
        "null",
        '{"sensor": "temperature", "value": NaN, "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "temperature", "value": Infinity, "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "temperature", "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "temperature", "value": "14", "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": ["x"], "value": 1, "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "temperature", "value": 1, "timestamp": "2999-01-01 00:00:00"}',
        '{"sensor": "temperature", "value": 1, "timestamp": 1733054400}',
        '{"sensor": "no such sensor!", "value": 1, "timestamp": "2024-12-01 12:00:00"}',
        b"\xff\xfe\x00binary",
        "x" * 200_000,
    ]

    def devices(client):
        pipe = client.pipeline()
        for i in range(100):
            pipe.publish(
                CHANNEL,
                json.dumps({"sensor": "gas", "value": i, "timestamp": f"2024-12-01T10:{i // 60:02d}:{i % 60:02d}"}),
            )
            pipe.publish(CHANNEL, bad[i % len(bad)])
        pipe.execute()
        wait_until(lambda: Reading.objects.count() + RejectedMessage.objects.count() == 200)
        # Still alive after the burst: one more valid reading is stored.
        client.publish(CHANNEL, '{"sensor": "gas", "value": -1, "timestamp": "2024-12-01 11:00:00"}')
        wait_until(lambda: Reading.objects.count() == 101)

    out = run_consumer(redis_url, devices)

    assert Reading.objects.count() == 101
    assert RejectedMessage.objects.count() == 100
    assert not RejectedMessage.objects.filter(reason="").exists()
    assert RejectedMessage.objects.filter(transport="pubsub").count() == 100
    assert "201 received, 101 stored, 0 duplicates, 100 rejected" in out


def test_nul_surrogates_and_deep_nesting_are_rejected_and_the_consumer_lives(redis_url):
    hostile = [
        '{"sensor": "\\ud800", "value": 1, "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "gas\\u0000", "value": 1, "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "gas", "value": "\\ud800", "timestamp": "2024-12-01 12:00:00"}',
        '{"sensor": "gas", "value": 1, "timestamp": "2024-12-01 12:00:00\\u0000+05:00"}',
        '{"sensor": "gas", "value": 1, "timestamp": "\\udfff"}',
        b"\xed\xa0\x80 \x00",
        "[" * 30_000 + "]" * 30_000,
    ]

    def devices(client):
        for i, message in enumerate(hostile):
            client.publish(CHANNEL, message)
            client.publish(CHANNEL, json.dumps({"sensor": "gas", "value": i, "timestamp": f"2024-12-01T10:00:{i:02d}"}))
        wait_until(lambda: Reading.objects.count() + RejectedMessage.objects.count() == 2 * len(hostile))
        client.publish(CHANNEL, '{"sensor": "gas", "value": -1, "timestamp": "2024-12-01 11:00:00"}')  # still alive
        wait_until(lambda: Reading.objects.count() == len(hostile) + 1)

    out = run_consumer(redis_url, devices)

    assert RejectedMessage.objects.filter(transport="pubsub").count() == len(hostile)
    assert not RejectedMessage.objects.filter(reason="").exists()
    assert RejectedMessage.objects.filter(reason__startswith="sensor: The sensor key holds a NUL").count() == 2
    assert f"{2 * len(hostile) + 1} received, {len(hostile) + 1} stored" in out


def test_reconnects_when_redis_drops_the_connection(redis_url):
    def devices(client):
        client.publish(CHANNEL, '{"sensor": "temperature", "value": 1, "timestamp": "2024-12-01 12:00:00"}')
        wait_until(lambda: Reading.objects.count() == 1)
        # What a Redis restart does to the subscriber: its connection is closed under it.
        assert client.client_kill_filter(_type="pubsub") >= 1
        deadline = time.monotonic() + 15
        second = 0
        while not holds(
            lambda: Reading.objects.count() >= 2
        ):  # pub/sub is at-most-once: publish until the new subscription hears
            assert time.monotonic() < deadline, "the consumer did not come back"
            second += 1
            client.publish(
                CHANNEL,
                json.dumps({"sensor": "temperature", "value": 2, "timestamp": f"2024-12-01T12:01:{second % 60:02d}"}),
            )
            time.sleep(0.2)

    run_consumer(redis_url, devices)

    assert Reading.objects.filter(value=2).count() >= 1


def test_sigterm_flushes_what_is_held_before_stopping(redis_url):
    def devices(client):
        for i in range(5):
            client.publish(CHANNEL, json.dumps({"sensor": "flow", "value": i, "timestamp": f"2024-12-01T12:00:0{i}"}))
        time.sleep(0.3)  # received, but the batch is not due for 60 s

    out = run_consumer(redis_url, devices, batch_ms=60_000)

    assert Reading.objects.filter(sensor__key="flow").count() == 5
    assert "5 received, 5 stored" in out
    assert Sensor.objects.get(key="flow").latest_value == 4.0


def test_without_redis_the_command_fails_with_one_line(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="No Redis configured"):
        call_command("consume_readings", "--source", "pubsub")
