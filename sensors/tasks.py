"""Background jobs of the sensors app: load arguments, call one service, own the retries."""

from typing import Any

from celery import Task, shared_task
from celery_progress.backend import ProgressRecorder

from sensors.services.http_sources import sources_fetch_due


@shared_task(bind=True, name="sensors.fetch_external_sources")
def fetch_external_sources(self: Task[Any, Any]) -> dict[str, Any]:
    """Fetch every enabled external source (scheduled every 10 minutes by migration 0003); progress through
    celery-progress. No retries: a failed source is recorded on it, and the next scheduled run is its retry."""
    recorder = ProgressRecorder(self)
    return sources_fetch_due(progress=recorder.set_progress).as_dict()
