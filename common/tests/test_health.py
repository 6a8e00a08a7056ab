"""The health check against the real database, Redis and a real Celery worker process."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.utils import load_backend
from django.urls import reverse
from django.utils import timezone

from common.health import (
    database_check,
    ingest_check,
    rates_check,
    redis_check,
    sources_check,
    system_health,
    worker_check,
)
from config.celery_app import app as celery_app
from conftest import celery_worker_process
from rates.tests.factories import RateFetchFactory
from sensors.tests.factories import HttpSourceFactory, SensorFactory

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def celery_worker(redis_url):
    """A real `celery worker` process on the test broker; stopped after the test."""
    with celery_worker_process(name="health", env={"REDIS_URL": redis_url}) as process:
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
    response = client.get(reverse("healthcheck"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert {name: check["state"] for name, check in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "worker": "up",
        "rates": "up",
        "sources": "up",
        "ingest": "disabled",
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
    assert body["down"] == ["redis", "worker", "ingest"]
    assert body["checks"]["database"]["state"] == "up"


def test_healthcheck_answers_get_only(client):
    assert client.post(reverse("healthcheck")).status_code == 405


def test_liveness(client):
    assert client.get(reverse("liveness")).json() == {"status": "ok"}


def test_system_health_shape(redis_url, settings):
    settings.HEALTHCHECK_WORKER_TIMEOUT = 0.2
    health = system_health()
    assert set(health) == {"status", "down", "checks"}
    assert set(health["checks"]) == {"database", "redis", "worker", "rates", "sources", "ingest", "detection"}


def test_rates_up_after_a_recent_update(settings):
    settings.RATES_STALE_AFTER_HOURS = 26
    RateFetchFactory(status="failed", provider="xe", finished_at=timezone.now() - timedelta(minutes=5))
    RateFetchFactory(status="success", provider="ecb", finished_at=timezone.now())
    result = rates_check()
    assert result["state"] == "up"
    assert result["stale"] is False
    assert "error" not in result


def test_rates_failing_update_is_reported_but_not_down_by_default(settings):
    settings.RATES_HEALTH_REQUIRED = False
    RateFetchFactory(status="success", finished_at=timezone.now() - timedelta(hours=1))
    RateFetchFactory(status="failed", provider="ecb", error="HTTP 503", finished_at=timezone.now())
    result = rates_check()
    assert result["state"] == "degraded"
    assert result["detail"] == "last update failed"
    assert result["error"] == "ecb: HTTP 503"


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


def test_sources_degraded_while_one_failed_its_last_fetch_never_down(django_assert_num_queries):
    assert sources_check() == {"state": "up", "enabled": 0, "failing": 0}
    HttpSourceFactory()
    HttpSourceFactory(consecutive_failures=3)
    HttpSourceFactory(consecutive_failures=1, enabled=False)  # not fetched on schedule: not counted
    HttpSourceFactory(consecutive_failures=1, sensor=SensorFactory(active=False))
    with django_assert_num_queries(1):
        result = sources_check()
    assert result == {
        "state": "degraded",
        "enabled": 2,
        "failing": 1,
        "detail": "1 of 2 external sources failed their last fetch",
    }


def test_ingest_reports_the_streams_lag_and_a_stalled_consumer(redis_url, settings):
    import uuid

    import redis

    settings.REDIS_URL = redis_url
    settings.SENSORS_STREAM_KEY = stream = f"health_stream_{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(redis_url)
    try:
        assert ingest_check()["state"] == "disabled"  # no stream, no group: no stream consumer has run
        client.xgroup_create(stream, "sensorhub", id="0", mkstream=True)
        for i in range(3):
            client.xadd(stream, {"data": f'{{"sensor": "s", "value": {i}, "timestamp": "2024-12-01 12:00:0{i}"}}'})

        stalled = ingest_check()  # entries wait and no consumer reads
        assert stalled["state"] == "degraded"
        assert (stalled["lag"], stalled["pending"], stalled["consumers"]) == (3, 0, 0)
        assert stalled["detail"] == "3 entries wait and no consumer has read for 60 s"

        client.xreadgroup("sensorhub", "c1", {stream: ">"}, count=2)  # a consumer at work
        working = ingest_check()
        assert working["state"] == "up"
        assert (working["lag"], working["pending"], working["consumers"]) == (1, 2, 1)
        assert working["idle_ms"] < 60_000
    finally:
        client.delete(stream)
        client.close()


def test_ingest_disabled_without_redis_and_down_when_it_is(settings):
    settings.REDIS_URL = ""
    assert ingest_check()["state"] == "disabled"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert ingest_check()["state"] == "down"
