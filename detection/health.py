"""The detection part of `GET /healthcheck` (registered in `DetectionConfig.ready()`): "degraded" without a seed
baseline or while sensors have readings no detect worker took; never down but when its state cannot be read."""

from typing import Any

from common.health import DEGRADED, UP
from detection.selectors import DETECTION_STALL_SECONDS, detection_status


def detection_check() -> dict[str, Any]:
    """Detection: sensors detected, sensors whose new readings no detect worker has taken for 5 minutes, seeds."""
    status = detection_status()  # a query that fails reports the part down (common.health.system_health)
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
