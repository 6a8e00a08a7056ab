"""Health of the parts Sensorhub depends on, for `GET /healthcheck` and operators.

Each check returns `{"state": "up" | "down" | "disabled", ...}`; "disabled" means the part is not configured
(Redis in the embedded mode) and does not make the system unhealthy. The rates check may also say "degraded"
(stale rates or a failing last update): reported, but down (503) only with RATES_HEALTH_REQUIRED. The external
sources check says "degraded" while any enabled source failed its last fetch; it never makes the system down.
The ingest check reports the Redis stream's lag and says "degraded" when entries wait and no consumer has read
for a minute (the stream consumer is stopped or stuck); it never makes the system down either.
"""

import time
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from config.celery_app import app as celery_app

UP, DOWN, DISABLED, DEGRADED = "up", "down", "disabled", "degraded"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def database_check(*, connection: BaseDatabaseWrapper | None = None) -> dict[str, Any]:
    """Run `SELECT 1` on the connection (the default database unless one is given)."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means the database cannot serve us
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}".strip()[:300]}
    return {"state": UP, "vendor": connection.vendor, "latency_ms": _elapsed_ms(started)}


def redis_check(*, url: str | None = None) -> dict[str, Any]:
    """PING the Redis at `url` (settings.REDIS_URL by default); disabled when none is configured."""
    url = settings.REDIS_URL if url is None else url
    if not url:
        return {"state": DISABLED, "detail": "REDIS_URL is not set (embedded mode)"}
    started = time.perf_counter()
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        client.close()
    return {"state": UP, "latency_ms": _elapsed_ms(started)}


def worker_check(*, timeout: float | None = None, redis_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Broadcast a Celery ping and count the workers that answer within `timeout` seconds.

    A Redis broker is checked first (a ping through a dead broker would hang in retries); `redis_result`, the
    check of settings.REDIS_URL already made, is reused when the broker is that same Redis.
    """
    timeout = settings.HEALTHCHECK_WORKER_TIMEOUT if timeout is None else timeout
    broker_url = celery_app.conf.broker_url or ""
    if broker_url.startswith(("redis://", "rediss://")):
        if redis_result is None or broker_url != settings.REDIS_URL:
            redis_result = redis_check(url=broker_url)
        if redis_result["state"] != UP:
            return {"state": DOWN, "detail": "the Celery broker (Redis) is unreachable"}
    try:
        replies = celery_app.control.ping(timeout=timeout)
    except Exception as exc:  # kombu raises transport-specific errors
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    if not replies:
        return {"state": DOWN, "detail": f"no Celery worker answered within {timeout:g} s"}
    return {"state": UP, "workers": len(replies)}


def rates_check() -> dict[str, Any]:
    """Exchange rates: the last successful update, the last failure, and whether the rates are stale."""
    from rates.selectors import rates_status

    try:
        status = rates_status()
    except Exception as exc:  # the database check reports the cause; here the part is unknown
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    success, failure = status["last_success"], status["last_failure"]
    problems = [text for flag, text in [(status["stale"], "stale"), (status["failing"], "last update failed")] if flag]
    result: dict[str, Any] = {
        "state": UP,
        "stale": status["stale"],
        "last_success": success.finished_at.isoformat() if success else None,
        "last_failure": failure.finished_at.isoformat() if failure else None,
    }
    if failure and status["failing"]:
        result["error"] = f"{failure.provider}: {failure.error}"[:300]
    if problems:
        result["state"] = DOWN if settings.RATES_HEALTH_REQUIRED else DEGRADED
        result["detail"] = ", ".join(problems)
    return result


def sources_check() -> dict[str, Any]:
    """External sources: how many are fetched on schedule and how many failed their last fetch (counts only;
    which ones and why is in the admin, since this answer is public)."""
    from sensors.selectors import sources_status

    try:
        status = sources_status()
    except Exception as exc:  # the database check reports the cause; here the part is unknown
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    result: dict[str, Any] = {"state": UP, **status}
    if status["failing"]:
        result["state"] = DEGRADED
        result["detail"] = f"{status['failing']} of {status['enabled']} external sources failed their last fetch"
    return result


INGEST_STALL_MS = 60_000  # entries waiting this long with no consumer reading: the ingest check is degraded


def ingest_check(*, redis_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The no-loss stream (SENSORS_STREAM_KEY) and its consumer group: lag, pending entries, consumers."""
    from sensors.transports.stream import stream_status

    if not settings.REDIS_URL:
        return {"state": DISABLED, "detail": "REDIS_URL is not set (embedded mode)"}
    if redis_result is not None and redis_result["state"] != UP:
        return {"state": DOWN, "detail": "Redis is unreachable"}
    stream, group = settings.SENSORS_STREAM_KEY, settings.SENSORS_STREAM_GROUP
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        status = stream_status(client, stream=stream, group=group)
    except redis.RedisError as exc:
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}"[:300]}
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


def detection_check() -> dict[str, Any]:
    """Detection: sensors detected, sensors whose new readings no detect worker has taken for 5 minutes, seeds."""
    from detection.selectors import DETECTION_STALL_SECONDS, detection_status

    try:
        status = detection_status()
    except Exception as exc:  # the database check reports the cause; here the part is unknown
        return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    result: dict[str, Any] = {"state": UP, **status}
    if not status["seeds"]:
        result["state"] = DEGRADED
        result["detail"] = "no seed baseline: run manage.py load_baselines"
    elif status["behind"]:
        result["state"] = DEGRADED
        result["detail"] = (
            f"{status['behind']} sensors have readings no detect worker took for {DETECTION_STALL_SECONDS // 60} min"
        )
    return result


def system_health() -> dict[str, Any]:
    """All checks; `status` is "ok" unless a check is down, and `down` names the parts that are."""
    redis_result = redis_check()
    checks = {
        "database": database_check(),
        "redis": redis_result,
        "worker": worker_check(redis_result=redis_result),
        "rates": rates_check(),
        "sources": sources_check(),
        "ingest": ingest_check(redis_result=redis_result),
        "detection": detection_check(),
    }
    down = [name for name, result in checks.items() if result["state"] == DOWN]
    return {"status": "down" if down else "ok", "down": down, "checks": checks}
