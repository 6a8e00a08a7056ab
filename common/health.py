"""Health of the parts Sensorhub depends on, for `GET /healthcheck` and operators.

Each check returns `{"state": "up" | "down" | "disabled" | "degraded", ...}`; "disabled" means the part is not
configured (Redis in the embedded mode) and does not make the system unhealthy. "degraded" (the part works but
something is missing: no consumer reads Redis, rates are stale) makes the overall status "degraded", still with
HTTP 200, and names the part in `degraded`. Only "down" makes `/healthcheck` answer 503.

The generic checks (database, Redis, Celery worker) are here; each app registers its own in its
`AppConfig.ready()` from `<app>/health.py` (`health_check_register`): rates, sources, ingest, detection.
"""

import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from celery import current_app as celery_app
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

UP, DOWN, DISABLED, DEGRADED = "up", "down", "disabled", "degraded"

# A check gets the results of the checks made before it (e.g. Redis's, so as not to wait twice for a dead server).
HealthCheck = Callable[[Mapping[str, dict[str, Any]]], dict[str, Any]]
_checks: dict[str, HealthCheck] = {}
# The order of the parts in the answer, as operators know it; registered parts not named here come after.
REPORT_ORDER = ("database", "redis", "worker", "rates", "sources", "ingest", "consumers", "detection")


def health_check_register(name: str, check: HealthCheck) -> None:
    """Report `check(results so far)` as the part `name` of the system's health (from an `AppConfig.ready()`).
    A check that raises reports the part down with the error (`check_failed`); registering a name again replaces
    its check."""
    _checks[name] = check


def check_failed(exc: BaseException) -> dict[str, Any]:
    """The answer of a part whose check raised: down, with the error (type and message, cut to 300 characters)."""
    return {"state": DOWN, "detail": f"{type(exc).__name__}: {exc}".strip()[:300]}


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
        return check_failed(exc)
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
        return check_failed(exc)
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
        return check_failed(exc)
    if not replies:
        return {"state": DOWN, "detail": f"no Celery worker answered within {timeout:g} s"}
    return {"state": UP, "workers": len(replies)}


def system_health() -> dict[str, Any]:
    """All checks, the generic ones and those the apps registered. `status` is "down" when a part is down,
    "degraded" when none is down but some are degraded, else "ok"; `down` and `degraded` name those parts."""
    redis_result = redis_check()
    checks = {
        "database": database_check(),
        "redis": redis_result,
        "worker": worker_check(redis_result=redis_result),
    }
    position = {name: index for index, name in enumerate(REPORT_ORDER)}
    for name in sorted(_checks, key=lambda name: position.get(name, len(position))):
        try:
            checks[name] = _checks[name](checks)
        except Exception as exc:  # a part whose state cannot be read (its query failed) is down, with the cause
            checks[name] = check_failed(exc)
    down = [name for name, result in checks.items() if result["state"] == DOWN]
    degraded = [name for name, result in checks.items() if result["state"] == DEGRADED]
    status = "down" if down else "degraded" if degraded else "ok"
    return {"status": status, "down": down, "degraded": degraded, "checks": checks}
