"""The archive's jobs: export and import run by a worker, their progress on the dashboard (common.jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Task, shared_task

from archive.services.jobs import EXPORT_TASK, IMPORT_LOCK, IMPORT_TASK, export_write
from common.jobs import ProgressCallback, job_run


@shared_task(bind=True, name=EXPORT_TASK)
def export_data(
    self: Task[Any, Any], format: str, since: str | None = None, platform: str | None = None
) -> dict[str, Any]:  # noqa: A002
    """Write an export to ARCHIVE_DIR/exports/<job id>; the summary names the file and carries counts and checksums."""
    job_id = str(self.request.id)

    def work(progress: ProgressCallback) -> dict[str, Any]:
        return export_write(job_id=job_id, format=format, since=since, platform=platform, progress=progress)

    return job_run(job_id, work, kind=EXPORT_TASK, task=EXPORT_TASK, label="Data export")


@shared_task(bind=True, name=IMPORT_TASK)
def import_data(self: Task[Any, Any], path: str, merge: bool = False, name: str = "") -> dict[str, Any]:
    """Import the uploaded archive at `path` (deleted afterwards, whatever the outcome); one at a time."""
    from archive.services.imports import archive_import

    def work(progress: ProgressCallback) -> dict[str, Any]:
        result = archive_import(path=Path(path), merge=merge, progress=progress)
        return {
            "file": name,
            "merge": result.merge,
            "verified": result.verified,
            "counts": result.counts,
            "inserted": result.inserted,
            "skipped": result.skipped,
            "users_missing": result.users_missing,
        }

    try:
        return job_run(
            self.request.id, work, kind=IMPORT_TASK, task=IMPORT_TASK, label="Data import", lock_key=IMPORT_LOCK
        )
    finally:
        Path(path).unlink(missing_ok=True)
