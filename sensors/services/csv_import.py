"""Import readings from CSV files (`manage.py import_readings`). The cleaning rules (docs/ingestion.md):

- UTF-8, with or without a byte-order mark; comma-separated (`--delimiter` for another single character);
  quoting as in RFC 4180; any line ending.
- Columns `timestamp,value[,sensor]`. A first row naming the columns (any order, any case) is a header; without
  one the columns are taken in that order. Other named columns are ignored.
- Every cell is trimmed of surrounding whitespace. Blank lines (every cell empty) and lines starting with `#`
  are skipped and counted.
- The sensor comes from the `sensor` column or, for files without one, from `--sensor`; a row naming another
  sensor than `--sensor` is bad.
- A bad row (wrong number of columns, unparseable timestamp or value, unknown or inactive sensor, ...) is reported
  with its line number, kept as a `RejectedMessage` (transport `csv`), and does not stop the import.
- A reading already stored (same sensor and timestamp) is counted as a duplicate and left as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from rest_framework import status

from common.exceptions import ApplicationError
from common.jobs import ProgressCallback, job_start
from common.models import JobFile
from sensors.ingest import IngestResult, csv_rows, readings_ingest, rejections_record
from sensors.models import Sensor, Transport

COLUMNS = ("timestamp", "value", "sensor")
CHUNK = 10_000
ERRORS_KEPT = 1_000
PROGRESS_EVERY = 256 * 1024  # characters between two progress reports
IMPORT_TASK = "sensors.import_readings"  # sensors.tasks.import_readings, queued by name
SUMMARY_ERRORS = 100  # bad rows (line, reason) kept in a job's summary


@dataclass
class CsvImportReport:
    """Counts of one import; `errors` holds the first `ERRORS_KEPT` (line, reason) pairs."""

    rows: int = 0
    skipped: int = 0
    result: IngestResult = field(default_factory=IngestResult)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def error(self, line: int, reason: str) -> None:
        if len(self.errors) < ERRORS_KEPT:
            self.errors.append((line, reason))


def readings_import_csv(
    *,
    lines: Iterable[str],
    sensor_key: str | None = None,
    progress: ProgressCallback | None = None,
    size: int | None = None,
    chunk_size: int = CHUNK,
    delimiter: str = ",",
) -> CsvImportReport:
    """Import the CSV text in `lines` chunk by chunk (each chunk its own transaction). `progress(done, size,
    "<n> rows")` is called every few hundred kilobytes, `done` counting the characters consumed and `size` the
    file's size when known (None otherwise)."""
    report = CsvImportReport()
    reader = csv.reader(_counted(lines, progress, size, report), delimiter=delimiter)
    columns: tuple[str, ...] | None = None
    chunk: list[dict[str, Any]] = []
    for line, row, problem in csv_rows(reader):
        if row is None:
            report.rows += 1
            _bad_row(report, line, [], f"unreadable CSV: {problem}")
            continue
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            report.skipped += 1
            continue
        if columns is None:
            header = _header(cells)
            columns = header or (COLUMNS[: len(cells)] if len(cells) in (2, 3) else COLUMNS[:2])
            _check_sensor_column(columns, sensor_key)
            if header is not None:
                continue
        report.rows += 1
        if len(cells) != len(columns):
            _bad_row(report, line, row, f"expected {len(columns)} columns ({','.join(columns)}), found {len(cells)}")
            continue
        item: dict[str, Any] = dict(zip(columns, cells, strict=True))
        item.pop("", None)
        item["line"] = line
        chunk.append(item)
        if len(chunk) >= chunk_size:
            _flush(chunk, sensor_key, report)
            chunk = []
    if chunk:
        _flush(chunk, sensor_key, report)
    report.errors.sort()
    return report


def _bad_row(report: CsvImportReport, line: int, row: list[str], reason: str) -> None:
    report.error(line, reason)
    report.result.received += 1
    report.result.rejected += 1
    rejections_record(transport=Transport.CSV, rejections=[({"line": line, "row": row}, reason, "")])


def _counted(
    lines: Iterable[str], progress: ProgressCallback | None, size: int | None, report: CsvImportReport
) -> Iterator[str]:
    if progress is None:
        yield from lines
        return
    done = reported = 0
    for text in lines:
        done += len(text)
        if done - reported >= PROGRESS_EVERY:
            progress(done, size, f"{report.rows:,} rows read")
            reported = done
        yield text
    progress(done, size if size is None else max(size, done), f"{report.rows:,} rows read")


def _header(cells: list[str]) -> tuple[str, ...] | None:
    names = [cell.lower() for cell in cells]
    if "timestamp" not in names or "value" not in names:
        return None
    return tuple(name if name in COLUMNS else "" for name in names)


def _check_sensor_column(columns: tuple[str, ...], sensor_key: str | None) -> None:
    if "sensor" not in columns and not sensor_key:
        raise ApplicationError(
            "The file has no sensor column: name the sensor (--sensor KEY, or the sensor field of the upload page).",
            code="no_sensor",
        )


def _flush(chunk: list[dict[str, Any]], sensor_key: str | None, report: CsvImportReport) -> None:
    result = readings_ingest(messages=chunk, transport=Transport.CSV, sensor_key=sensor_key, text_values=True)
    report.result.add(result)
    for index, reason in result.rejections:
        report.error(chunk[index]["line"], reason)


# --- as a job (the upload page) ---------------------------------------------------------------------------------


def readings_import_start(
    *, name: str, content: bytes, sensor_key: str | None = None, user: Any = None, delimiter: str = ","
) -> str:
    """Start importing the uploaded CSV `content` as a background job (the task `sensors.import_readings`, run by
    a worker); return the job id. The file is kept in the database (`JobFile`) so that a worker with no shared
    disk reads it; the job deletes it once read.

    Refused (ApplicationError, 400, nothing stored or queued): an empty file, one over `CSV_UPLOAD_MAX_BYTES`, an
    unknown sensor. Refused with `JobRefused` (409): an import of the same sensor already queued or running (two
    at once would interleave their duplicate counts and rejections). A file whose rows name their sensors takes no
    lock: ingestion stores each (sensor, timestamp) once whatever runs beside it."""
    limit: int = settings.CSV_UPLOAD_MAX_BYTES
    if not content:
        raise ApplicationError("The file is empty.", code="validation_error", fields={"file": ["The file is empty."]})
    if len(content) > limit:
        detail = f"The file is {len(content):,} bytes; the limit is {limit:,} (CSV_UPLOAD_MAX_BYTES)."
        raise ApplicationError(
            detail,
            code="validation_error",
            fields={"file": [detail]},
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    label = f"CSV import of {name}"
    if sensor_key:
        if not Sensor.objects.filter(key=sensor_key).exists():
            raise ApplicationError(
                f"No sensor {sensor_key!r}.", code="validation_error", fields={"sensor": [f"No sensor {sensor_key!r}."]}
            )
        label += f" into {sensor_key}"
    with transaction.atomic():
        job_id = job_start(
            kind=IMPORT_TASK,
            task=IMPORT_TASK,
            kwargs={"sensor_key": sensor_key or None, "delimiter": delimiter},
            lock_key=sensor_key or None,
            user=user,
            label=label,
        )
        JobFile.objects.create(job_id=job_id, name=name[:255], size=len(content), content=content)
    return job_id


def readings_import_job(
    *, job_id: str, sensor_key: str | None, delimiter: str = ",", progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Import the file uploaded for the job `job_id` (`readings_import_start`) and return its summary: counts, the
    first `SUMMARY_ERRORS` bad rows with their line numbers. The file is deleted once read, whatever the outcome.
    Raises ApplicationError when the file is gone or is not UTF-8 text."""
    upload = JobFile.objects.filter(job_id=job_id).order_by("pk").first()
    if upload is None:
        raise ApplicationError("The uploaded file is gone (the job ran already, or was deleted).", code="not_found")
    try:
        text = bytes(upload.content).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(f"{upload.name} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    finally:
        JobFile.objects.filter(pk=upload.pk).delete()
    report = readings_import_csv(
        lines=io.StringIO(text, newline=""),
        sensor_key=sensor_key,
        progress=progress,
        size=len(text),
        delimiter=delimiter,
    )
    result = report.result
    return {
        "file": upload.name,
        "sensor": sensor_key,
        "rows": report.rows,
        "stored": result.stored,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "skipped": report.skipped,
        "errors": [{"line": line, "reason": reason} for line, reason in report.errors[:SUMMARY_ERRORS]],
    }
