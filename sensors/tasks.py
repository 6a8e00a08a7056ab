"""Background jobs of the sensors app: load arguments, call one service, own the retries."""

from typing import Any

from celery import Task, shared_task

from common.jobs import job_run
from sensors.services.csv_import import IMPORT_TASK, readings_import_job
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


@shared_task(bind=True, name=IMPORT_TASK)
def import_readings(self: Task[Any, Any], sensor_key: str | None = None, delimiter: str = ",") -> dict[str, Any]:
    """Import the CSV file uploaded for this job (the upload page, `readings_import_start`): a job (common.jobs)
    whose progress the page and the jobs page show, and whose summary counts what was stored."""
    job_id = self.request.id or ""
    return job_run(
        self.request.id,
        lambda progress: readings_import_job(
            job_id=job_id, sensor_key=sensor_key, delimiter=delimiter, progress=progress
        ),
        kind=IMPORT_TASK,
        task=IMPORT_TASK,
        label="CSV import",
        lock_key=sensor_key,
    )
