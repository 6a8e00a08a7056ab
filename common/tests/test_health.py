"""The health check against the real database, Redis and a real Celery worker process."""

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.db.utils import load_backend
from django.urls import reverse
from django.utils import timezone

from common.health import database_check, redis_check, system_health, worker_check
from config.celery_app import app as celery_app
from conftest import celery_worker_process, process_database_url_or_none
from rates.tests.factories import RateFetchFactory

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def celery_worker(redis_url):
    """A real `celery worker` process on the test broker; stopped after the test. It is here to answer pings, so
    it consumes a queue of its own: jobs other tests left in the default queue are not its to run (it would run
    them against the test database, and their rows would outlive this test)."""
    env = {"REDIS_URL": redis_url}
    if url := process_database_url_or_none():
        env["DATABASE_URL"] = url
    with celery_worker_process(name="health", env=env, queues=f"health-{os.getpid()}") as process:
        yield process


def test_database_up():
    result = database_check()
    assert result["state"] == "up"
    assert result["vendor"] == connection.vendor


def test_database_down_is_reported_with_the_driver_error():
    broken = dict(connection.settings_dict)
    if connection.vendor == "sqlite":
        broken["NAME"] = "/nonexistent-directory/db.sqlite3"
    else:
        broken["PORT"] = 1
    wrapper = load_backend(broken["ENGINE"]).DatabaseWrapper(broken, alias="broken")
    try:
        result = database_check(connection=wrapper)
    finally:
        wrapper.close()
    assert result["state"] == "down"
    assert "Error" in result["detail"]


def test_redis_up(redis_url):
    assert redis_check(url=redis_url)["state"] == "up"


def test_redis_down_and_disabled():
    assert redis_check(url=DEAD_REDIS)["state"] == "down"
    assert redis_check(url="")["state"] == "disabled"


def test_worker_down_when_none_answers(redis_url):
    result = worker_check(timeout=0.5)
    assert result == {"state": "down", "detail": "no Celery worker answered within 0.5 s"}


def test_worker_down_when_the_broker_is_unreachable(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", DEAD_REDIS)
    assert worker_check(timeout=0.5)["state"] == "down"


def test_healthcheck_is_200_when_everything_is_up(client, celery_worker, settings):
    RateFetchFactory()
    settings.SENSORS_STREAM_KEY = "health_no_such_stream"  # no stream consumer has run: not a problem
    settings.SENSORS_HEALTH_CONSUMERS = []  # no Redis consumer expected (sensors/tests/transports/test_heartbeat.py)
    response = client.get(reverse("healthcheck"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "degraded"  # 200 all the same: nothing is down
    assert body["down"] == []
    assert body["degraded"] == ["detection"]
    assert {name: check["state"] for name, check in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "worker": "up",
        "rates": "up",
        "sources": "up",
        "ingest": "disabled",
        "consumers": "up",
        "detection": "degraded",  # no seed baseline loaded in this test
    }
    assert body["checks"]["worker"]["workers"] >= 1


def test_healthcheck_is_503_naming_the_worker_when_none_runs(client, redis_url, settings):
    settings.HEALTHCHECK_WORKER_TIMEOUT = 0.5
    response = client.get(reverse("healthcheck"))
    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]


def test_healthcheck_is_503_naming_redis_when_it_is_down(client, settings, monkeypatch):
    settings.REDIS_URL = DEAD_REDIS
    monkeypatch.setattr(celery_app.conf, "broker_url", DEAD_REDIS)
    response = client.get(reverse("healthcheck"))
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["redis", "worker", "ingest", "consumers"]
    assert body["checks"]["database"]["state"] == "up"


def test_healthcheck_answers_get_only(client):
    assert client.post(reverse("healthcheck")).status_code == 405


def test_liveness(client):
    assert client.get(reverse("liveness")).json() == {"status": "ok"}


def test_system_health_shape(redis_url, settings):
    settings.HEALTHCHECK_WORKER_TIMEOUT = 0.2
    health = system_health()
    assert set(health) == {"status", "down", "degraded", "checks"}
    # The apps' checks are registered in their AppConfig.ready(); the answer keeps the order operators know.
    assert list(health["checks"]) == [
        *["database", "redis", "worker", "rates", "sources", "ingest", "consumers", "detection"]
    ]


def test_status_is_ok_only_when_no_part_is_degraded_or_down(monkeypatch, redis_url, settings):
    from common import health

    monkeypatch.setattr(health, "worker_check", lambda **kwargs: {"state": "up", "workers": 1})
    monkeypatch.setattr(health, "_checks", {"extra": lambda results: {"state": "up"}})
    assert system_health() | {"checks": None} == {"status": "ok", "down": [], "degraded": [], "checks": None}
    health.health_check_register("slow", lambda results: {"state": "degraded"})
    assert system_health()["status"] == "degraded"
    assert system_health()["degraded"] == ["slow"]
    health.health_check_register("extra", lambda results: {"state": "down"})
    assert (system_health()["status"], system_health()["down"]) == ("down", ["extra"])


def test_a_registered_check_is_reported_after_the_known_ones(monkeypatch, redis_url, settings):
    from common import health

    settings.HEALTHCHECK_WORKER_TIMEOUT = 0.2
    monkeypatch.setattr(health, "_checks", dict(health._checks))
    health.health_check_register("extra", lambda results: {"state": "down", "redis": results["redis"]["state"]})
    checks = system_health()["checks"]
    assert list(checks)[-2:] == ["detection", "extra"]
    assert checks["extra"] == {"state": "down", "redis": "up"}


def test_a_registered_check_that_raises_reports_its_part_down_with_the_error(monkeypatch, redis_url, settings):
    from common import health

    def broken(results):
        raise RuntimeError("relation does not exist")

    settings.HEALTHCHECK_WORKER_TIMEOUT = 0.2
    monkeypatch.setattr(health, "_checks", dict(health._checks))
    health.health_check_register("rates", broken)
    result = system_health()
    assert result["checks"]["rates"] == {"state": "down", "detail": "RuntimeError: relation does not exist"}
    assert "rates" in result["down"]


def test_stale_rates_make_the_healthcheck_503_when_required(client, settings, celery_worker):
    settings.RATES_HEALTH_REQUIRED = True
    settings.RATES_STALE_AFTER_HOURS = 26
    RateFetchFactory(finished_at=timezone.now() - timedelta(hours=30))
    response = client.get(reverse("healthcheck"))
    body = response.json()
    assert body["checks"]["rates"]["state"] == "down"
    assert body["checks"]["rates"]["detail"] == "stale"
    assert body["down"] == ["rates"]
    assert response.status_code == 503
