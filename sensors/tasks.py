"""Background jobs of the sensors app: load arguments, call one service, own the retries."""

from typing import Any

from celery import shared_task

from sensors.services.http_sources import sources_fetch_due
from sensors.services.partitions import partitions_maintain
from sensors.services.retention import raw_retention_apply


@shared_task(name="sensors.fetch_external_sources")
def fetch_external_sources() -> dict[str, Any]:
    """Fetch every enabled external source (scheduled every 10 minutes by migration 0003). A routine task, not a
    job on the jobs page (it would add a row every 10 minutes; each source's fetch is recorded on it). No
    retries: a failed source is recorded on it, and the next scheduled run is its retry."""
    return sources_fetch_due().as_dict()


@shared_task(name="sensors.maintain_partitions")
def maintain_partitions() -> dict[str, Any]:
    """Create the readings' partitions due ahead, and partitions for readings held in the default one (hourly by
    migration 0008; PostgreSQL only, nothing to do on SQLite)."""
    return partitions_maintain().as_dict()


@shared_task(name="sensors.apply_retention")
def apply_retention() -> dict[str, Any]:
    """Drop raw readings past their retention after completing their roll-ups (daily by migration 0008)."""
    return raw_retention_apply().as_dict()
