"""Background jobs of the rates app: load arguments, call one service, own the retries."""

from datetime import date
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from common.jobs import ProgressCallback, job_run
from rates.services import UPDATE_RATES_LABEL, UPDATE_RATES_TASK, RatesUnavailableError, rates_update

MAX_COUNTDOWN = 3600.0


def retry_countdown(retries: int) -> float:
    """Seconds before retry number `retries + 1`: RATES_RETRY_BACKOFF × 2**retries, at most one hour."""
    backoff: float = settings.RATES_RETRY_BACKOFF
    return min(backoff * 2.0**retries, MAX_COUNTDOWN)


@shared_task(bind=True, name=UPDATE_RATES_TASK)
def update_rates(self: Task[Any, Any], provider: str | None = None, on: str | None = None) -> dict[str, Any]:
    """Fetch rates (scheduled twice a day by migration 0003, or queued by the API); retried with exponential
    backoff while no provider delivers, up to RATES_RETRY_MAX times. A job (common.jobs): its progress and
    outcome are on the jobs page and at the API's progress URL."""
    day = _parse_date(on)

    def work(progress: ProgressCallback) -> dict[str, Any]:
        try:
            fetch = rates_update(provider=provider, on=day, progress=progress)
        except RatesUnavailableError as exc:
            raise self.retry(
                exc=exc, countdown=retry_countdown(self.request.retries), max_retries=settings.RATES_RETRY_MAX
            ) from exc
        return {
            "fetch_id": fetch.pk,
            "provider": fetch.provider,
            "rows": fetch.rows,
            "as_of": fetch.as_of.isoformat() if fetch.as_of else None,
        }

    return job_run(self.request.id, work, kind=UPDATE_RATES_TASK, task=UPDATE_RATES_TASK, label=UPDATE_RATES_LABEL)


def _parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
