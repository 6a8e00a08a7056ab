"""The sensors' parts of the health check: external sources and the ingest stream."""

import pytest

from sensors.health import ingest_check, sources_check
from sensors.tests.factories import HttpSourceFactory, SensorFactory

pytestmark = pytest.mark.django_db


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
