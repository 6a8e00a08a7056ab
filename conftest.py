"""Fixtures shared by every app's tests."""

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and rate limits live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def require_server(name: str, error: Exception, *, hint: str = "start it or set its URL to run this test") -> None:
    """A missing server (or browser) fails the test in CI and skips it elsewhere, with the reason."""
    message = f"{name} is not available: {error}"
    if IN_CI:
        pytest.fail(f"{message} (CI runs against the real servers and browser; none may be missing)")
    pytest.skip(f"{message}; {hint}")


@pytest.fixture
def redis_url() -> str:
    """The URL of a live Redis, emptied of test keys before and after the test."""
    url = settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        require_server("Redis", exc)
    yield url
    client.close()


@pytest.fixture
def mqtt_url() -> str:
    """The URL of a live MQTT broker (Mosquitto). Tests keep to topic prefixes and client ids of their own."""
    from sensors.sources.mqtt import broker_parse

    url = settings.MQTT_URL
    try:
        broker = broker_parse(url)
        socket.create_connection((broker.host, broker.port), timeout=2).close()
    except (ValueError, OSError) as exc:
        require_server("MQTT broker", exc)
    return url


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def viewer(db):
    return UserFactory(viewer=True)


@pytest.fixture
def operator(db):
    return UserFactory(operator=True)


@pytest.fixture
def staff_user(db):
    return UserFactory(staff=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_as(db):
    """`client_as(user)`: an API client logged in (session) as that user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@contextlib.contextmanager
def celery_worker_process(*, name: str, env: dict[str, str]):
    """A real `celery worker` process (solo pool) with `env` on top of ours, up once it answers a ping; stopped
    on exit. `env` names the broker (REDIS_URL) and, for workers that touch the database, the test database."""
    from config.celery_app import app as celery_app

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{name}-{os.getpid()}@%h",
            "--loglevel=WARNING",
        ],  # fmt: skip
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    try:
        while not celery_app.control.ping(timeout=0.5):
            if process.poll() is not None:
                pytest.fail(f"the worker exited: {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the worker did not answer pings within 60 s")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
