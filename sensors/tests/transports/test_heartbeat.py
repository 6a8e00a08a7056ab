"""Consumer heartbeats and the health check's `consumers` part, with real `consume_readings` processes on the real
Redis: `/healthcheck` is degraded while no consumer reads Redis, and the old contract's PUBLISH is stored and seen
live once `make run`'s consumers run (with REDIS_URL)."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.urls import reverse

from common.health import system_health
from conftest import process_database_url_or_none
from sensors.health import consumers_check
from sensors.models import Reading, Sensor
from sensors.transports.heartbeat import KEY_PREFIX, Heartbeat, consumers_reading

pytestmark = pytest.mark.django_db(transaction=True)

SEED_MESSAGE = {"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}


@pytest.fixture
def no_heartbeats(redis_url):
    """No consumer heartbeat of another test (or a crashed consumer) in the test Redis."""
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
        client.delete(key)
    yield client
    client.close()


@contextlib.contextmanager
def consumer_process(source: str, *, env: dict[str, str]):
    """`manage.py consume_readings --source <source>` as a process of its own, stopped with SIGTERM at the end."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "consume_readings", "--source", source],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def wait_for(predicate, *, timeout: float = 30, process=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the consumer exited: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.2)


def consumer_env(redis_url: str, tmp_path) -> dict[str, str]:
    # The test database when another process can reach it (PostgreSQL); else a database of the consumer's own,
    # enough for a consumer that only has to read (nothing is published in the health tests).
    database = process_database_url_or_none() or f"sqlite:///{tmp_path / 'consumer.sqlite3'}"
    return {"REDIS_URL": redis_url, "DATABASE_URL": database, "CI": "false"}


def test_heartbeat_lives_while_beating_and_goes_at_stop(no_heartbeats):
    heartbeat = Heartbeat("pubsub")
    assert consumers_reading(no_heartbeats) == {}
    heartbeat.beat(no_heartbeats)
    assert consumers_reading(no_heartbeats) == {"pubsub": 1}
    assert 0 < no_heartbeats.ttl(heartbeat.key) <= 15
    heartbeat.stop()
    assert consumers_reading(no_heartbeats) == {}


def test_consumers_disabled_without_redis_and_down_when_it_is(settings):
    settings.REDIS_URL = ""
    assert consumers_check()["state"] == "disabled"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert consumers_check(redis_result={"state": "down"}) == {"state": "down", "detail": "Redis is unreachable"}


def test_healthcheck_degraded_until_real_consumers_read_then_names_the_one_that_stopped(
    client, no_heartbeats, redis_url, settings, tmp_path
):
    settings.REDIS_URL = redis_url
    settings.HEALTHCHECK_WORKER_TIMEOUT = 0.2
    body = client.get(reverse("healthcheck")).json()
    assert "consumers" in body["degraded"]
    assert body["checks"]["consumers"] == {
        "state": "degraded",
        "reading": {"stream": 0, "pubsub": 0},
        "detail": "no consumer reading Redis stream or pubsub for 15 s: manage.py consume_readings --source stream, "
        "manage.py consume_readings --source pubsub is not running",
    }

    env = consumer_env(redis_url, tmp_path)
    with consumer_process("stream", env=env) as stream, consumer_process("pubsub", env=env) as pubsub:
        wait_for(lambda: consumers_check()["state"] == "up", process=stream)
        assert consumers_check()["reading"] == {"stream": 1, "pubsub": 1}
        assert "consumers" not in system_health()["degraded"]
        assert pubsub.poll() is None

        stream.send_signal(signal.SIGTERM)  # a clean stop takes its heartbeat away at once
        stream.wait(timeout=30)
        after = consumers_check()
        assert after["state"] == "degraded"
        assert after["reading"] == {"stream": 0, "pubsub": 1}
        assert after["detail"].startswith("no consumer reading Redis stream for 15 s")


def test_a_killed_consumer_is_missed_once_its_heartbeat_expires(no_heartbeats, redis_url, settings, tmp_path):
    settings.REDIS_URL = redis_url
    settings.SENSORS_HEALTH_CONSUMERS = ["pubsub"]
    with consumer_process("pubsub", env=consumer_env(redis_url, tmp_path)) as pubsub:
        wait_for(lambda: consumers_check()["state"] == "up", process=pubsub)
        pubsub.kill()  # SIGKILL: no clean stop, the key stays until its TTL runs out
        pubsub.wait(timeout=10)
        assert consumers_check()["state"] == "up"
        wait_for(lambda: consumers_check()["state"] == "degraded", timeout=20)


@pytest.mark.asyncio
async def test_the_seed_publish_is_stored_and_seen_live(
    no_heartbeats, redis_url, settings, tmp_path, ws_headers, live_groups_restored, role_groups
):
    """The README's `redis-cli PUBLISH sensor_stream '{"sensor": "temperature", ...}'` with the pub/sub consumer of
    `make run` running: the unknown key `temperature` registers a sensor (SENSORS_AUTO_REGISTER), the reading is
    stored, and a second one reaches a socket watching that sensor."""
    url = process_database_url_or_none()
    if url is None:
        from conftest import require_server

        require_server("PostgreSQL", RuntimeError("the tests run on SQLite"), hint="set DATABASE_URL to run this test")
    from accounts.tests.factories import UserFactory

    viewer = await sync_to_async(UserFactory)(viewer=True)
    headers = await sync_to_async(ws_headers)(user=viewer)
    publisher = redis.Redis.from_url(redis_url)
    channel = settings.SENSORS_PUBSUB_CHANNEL
    with consumer_process("pubsub", env={"REDIS_URL": redis_url, "DATABASE_URL": url, "CI": "false"}) as process:
        await sync_to_async(wait_for)(lambda: publisher.pubsub_numsub(channel)[0][1] > 0, process=process)
        assert publisher.publish(channel, json.dumps(SEED_MESSAGE)) == 1
        await sync_to_async(wait_for)(lambda: Reading.objects.filter(sensor__key="temperature").exists())
        sensor = await Sensor.objects.aget(key="temperature")
        assert (await Reading.objects.aget(sensor=sensor)).value == 14

        from channels.testing import WebsocketCommunicator

        from config.asgi import application

        communicator = WebsocketCommunicator(application, "ws/sensors/temperature/readings/", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        assert (await communicator.receive_json_from(timeout=5))["type"] == "history"
        publisher.publish(channel, json.dumps({**SEED_MESSAGE, "value": 15, "timestamp": "2024-12-01 12:00:01"}))
        live = await communicator.receive_json_from(timeout=10)
        assert live["type"] == "readings"
        assert live["readings"] == [{"timestamp": "2024-12-01T12:00:01+00:00", "value": 15.0}]
        await communicator.disconnect()
        await asyncio.sleep(0)
    publisher.close()
