"""The rates part of the health check."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rates.health import rates_check
from rates.tests.factories import RateFetchFactory

pytestmark = pytest.mark.django_db


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
