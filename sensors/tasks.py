"""Background jobs of the sensors app: load arguments, call one service, own the retries."""

from typing import Any

from celery import shared_task

from sensors.services.http_sources import sources_fetch_due


@shared_task(name="sensors.fetch_external_sources")
def fetch_external_sources() -> dict[str, Any]:
    """Fetch every enabled external source (scheduled every 10 minutes by migration 0003). A routine task, not a
    job on the jobs page (it would add a row every 10 minutes; each source's fetch is recorded on it). No
    retries: a failed source is recorded on it, and the next scheduled run is its retry."""
    return sources_fetch_due().as_dict()
