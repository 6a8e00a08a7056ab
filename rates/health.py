"""The rates part of `GET /healthcheck` (registered in `RatesConfig.ready()`).

It may say "degraded" (never fetched, stale rates, a failing last update, or demo rates shown): reported, but down
(503) only with RATES_HEALTH_REQUIRED.
"""

from typing import Any

from django.conf import settings

from common.health import DEGRADED, DOWN, UP
from rates.selectors import rates_status


def rates_check() -> dict[str, Any]:
    """Exchange rates: the last successful update, the last failure, and whether the rates are stale."""
    status = rates_status()  # a query that fails reports the part down (common.health.system_health)
    success, failure = status["last_success"], status["last_failure"]
    flags = [
        (status["never_fetched"], "never fetched"),
        (status["stale"], "stale"),
        (status["failing"], "last update failed"),
        (status["demo"], "demo rates (not real) shown"),
    ]
    problems = [text for flag, text in flags if flag]
    result: dict[str, Any] = {
        "state": UP,
        "stale": status["stale"],
        "never_fetched": status["never_fetched"],
        "demo": status["demo"],
        "last_success": success.finished_at.isoformat() if success else None,
        "last_failure": failure.finished_at.isoformat() if failure else None,
    }
    if failure and status["failing"]:
        result["error"] = f"{failure.provider}: {failure.error}"[:300]
    if problems:
        result["state"] = DOWN if settings.RATES_HEALTH_REQUIRED else DEGRADED
        result["detail"] = ", ".join(problems)
    return result
