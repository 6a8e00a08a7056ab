"""The sensors' parts of `GET /healthcheck` (registered in `SensorsConfig.ready()`).

The external sources check says "degraded" while any enabled source failed its last fetch; it never makes the
system down. The ingest check reports the Redis stream's lag and says "degraded" when entries wait and no consumer
has read for a minute (the stream consumer is stopped or stuck); it never makes the system down either. The
consumers check says "degraded" while Redis is configured and a transport of SENSORS_HEALTH_CONSUMERS has no
consumer reading (their heartbeats, `sensors.transports.heartbeat`): a PUBLISH would reach nobody.
"""

from typing import Any

import redis
from django.conf import settings

from common.health import DEGRADED, DISABLED, DOWN, UP, check_failed
from sensors.selectors import sources_status
from sensors.transports.heartbeat import HEARTBEAT_TTL, consumers_reading
from sensors.transports.stream import stream_status


def sources_check() -> dict[str, Any]:
    """External sources: how many are fetched on schedule and how many failed their last fetch (counts only;
    which ones and why is in the admin, since this answer is public)."""
    status = sources_status()  # a query that fails reports the part down (common.health.system_health)
    result: dict[str, Any] = {"state": UP, **status}
    if status["failing"]:
        result["state"] = DEGRADED
        result["detail"] = f"{status['failing']} of {status['enabled']} external sources failed their last fetch"
    return result


INGEST_STALL_MS = 60_000  # entries waiting this long with no consumer reading: the ingest check is degraded


def ingest_check(*, redis_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The no-loss stream (SENSORS_STREAM_KEY) and its consumer group: lag, pending entries, consumers."""
    if not settings.REDIS_URL:
        return {"state": DISABLED, "detail": "REDIS_URL is not set (embedded mode)"}
    if redis_result is not None and redis_result["state"] != UP:
        return {"state": DOWN, "detail": "Redis is unreachable"}
    stream, group = settings.SENSORS_STREAM_KEY, settings.SENSORS_STREAM_GROUP
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        status = stream_status(client, stream=stream, group=group)
    except redis.RedisError as exc:
        return check_failed(exc)
    finally:
        client.close()
    if status is None:
        return {"state": DISABLED, "detail": f"no consumer group {group!r} on stream {stream!r} yet"}
    result: dict[str, Any] = {"state": UP, "stream": stream, **status}
    waiting = (status["lag"] or 0) + status["pending"]
    if waiting and (status["idle_ms"] is None or status["idle_ms"] > INGEST_STALL_MS):
        result["state"] = DEGRADED
        result["detail"] = f"{waiting} entries wait and no consumer has read for {INGEST_STALL_MS // 1000} s"
    return result


def consumers_check(*, redis_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Redis consumers reading now, per transport (`{"stream": 1, "pubsub": 1}`); degraded, naming them, when a
    transport of SENSORS_HEALTH_CONSUMERS has none (never down: Redis itself is its own part)."""
    if not settings.REDIS_URL:
        return {"state": DISABLED, "detail": "REDIS_URL is not set (embedded mode)"}
    if redis_result is not None and redis_result["state"] != UP:
        return {"state": DOWN, "detail": "Redis is unreachable"}
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        reading = consumers_reading(client)
    except redis.RedisError as exc:
        return check_failed(exc)
    finally:
        client.close()
    expected = list(settings.SENSORS_HEALTH_CONSUMERS)
    result: dict[str, Any] = {"state": UP, "reading": {name: reading.get(name, 0) for name in expected} | reading}
    missing = [name for name in expected if not reading.get(name)]
    if missing:
        result["state"] = DEGRADED
        result["detail"] = (
            f"no consumer reading Redis {' or '.join(missing)} for {HEARTBEAT_TTL} s: "
            + ", ".join(f"manage.py consume_readings --source {name}" for name in missing)
            + " is not running"
        )
    return result
