"""Export and import as background jobs (the dashboard's data page): files live in ARCHIVE_DIR, shared by the web
process and the workers; the import takes the lock key "database", so only one runs at a time."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from common.exceptions import ApplicationError
from common.jobs import job_start
from common.models import Job

EXPORT_TASK = "archive.export_data"
IMPORT_TASK = "archive.import_data"
IMPORT_LOCK = "database"  # one import at a time: two restores at once would interleave their rows
SUFFIXES = {"jsonl": ".jsonl", "csv": ".zip"}


def archive_dir() -> Path:
    path = Path(settings.ARCHIVE_DIR)
    (path / "exports").mkdir(parents=True, exist_ok=True)
    (path / "uploads").mkdir(parents=True, exist_ok=True)
    return path


def archive_export_start(
    *,
    format: str,
    since: datetime | None = None,
    platform: str | None = None,
    user: Any = None,  # noqa: A002
) -> str:
    """Queue an export job writing ARCHIVE_DIR/exports/<job id>.<jsonl|zip>; return the job id."""
    if format not in SUFFIXES:
        raise ApplicationError(f"Unknown format {format!r}: use jsonl or csv.", fields={"format": ["jsonl or csv"]})
    what = (
        [format] + ([f"platform {platform}"] if platform else []) + ([f"since {since:%Y-%m-%d %H:%M}"] if since else [])
    )
    return job_start(
        kind=EXPORT_TASK,
        task=EXPORT_TASK,
        kwargs={"format": format, "since": since.isoformat() if since else None, "platform": platform},
        user=user,
        label=f"Data export ({', '.join(what)})",
    )


def archive_import_start(*, name: str, chunks: Iterable[bytes], merge: bool, user: Any = None) -> str:
    """Save an uploaded archive to ARCHIVE_DIR/uploads and queue its import; return the job id. Refused
    (`JobRefused`, nothing saved) while another import is queued or running."""
    upload = archive_dir() / "uploads" / f"{uuid.uuid4()}{Path(name).suffix[:10]}"
    with upload.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    try:
        return job_start(
            kind=IMPORT_TASK,
            task=IMPORT_TASK,
            kwargs={"path": str(upload), "merge": merge, "name": name[:200]},
            lock_key=IMPORT_LOCK,
            user=user,
            label=f"Data import of {name[:100]}{' (merge)' if merge else ''}",
        )
    except Exception:
        upload.unlink(missing_ok=True)
        raise


def export_file(job: Job) -> Path | None:
    """The file a succeeded export job wrote, if it is still there."""
    if job.kind != EXPORT_TASK or job.state != Job.State.SUCCEEDED or not isinstance(job.result, dict):
        return None
    path = archive_dir() / "exports" / Path(str(job.result.get("file", ""))).name
    return path if path.is_file() else None


def export_write(*, job_id: str, format: str, since: str | None, platform: str | None, progress: Any) -> dict[str, Any]:  # noqa: A002
    """The export job's work: write to a temporary name, then rename, so that a download never sees half a file."""
    from archive.services.export import archive_export

    target = archive_dir() / "exports" / f"{job_id}{SUFFIXES[format]}"
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with partial.open("wb") as out:
            result = archive_export(
                out=out,
                format=format,
                since=datetime.fromisoformat(since) if since else None,
                platform=platform,
                progress=progress,
            )
        shutil.move(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return {"file": target.name, "bytes": target.stat().st_size, "counts": result.counts, "checksums": result.checksums}
