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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.exceptions import ApplicationError
from sensors.ingest import IngestResult, csv_rows, readings_ingest, rejections_record
from sensors.models import Transport

if TYPE_CHECKING:
    pass

COLUMNS = ("timestamp", "value", "sensor")
CHUNK = 10_000
ERRORS_KEPT = 1_000


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
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK,
    delimiter: str = ",",
) -> CsvImportReport:
    """Import the CSV text in `lines` chunk by chunk (each chunk its own transaction). `progress` is called with
    the number of characters consumed since its last call."""
    report = CsvImportReport()
    reader = csv.reader(_counted(lines, progress), delimiter=delimiter)
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


def _counted(lines: Iterable[str], progress: Callable[[int], None] | None) -> Iterator[str]:
    if progress is None:
        yield from lines
        return
    pending = 0
    for text in lines:
        pending += len(text)
        if pending >= 1 << 20:
            progress(pending)
            pending = 0
        yield text
    progress(pending)


def _header(cells: list[str]) -> tuple[str, ...] | None:
    names = [cell.lower() for cell in cells]
    if "timestamp" not in names or "value" not in names:
        return None
    return tuple(name if name in COLUMNS else "" for name in names)


def _check_sensor_column(columns: tuple[str, ...], sensor_key: str | None) -> None:
    if "sensor" not in columns and not sensor_key:
        raise ApplicationError("The file has no sensor column: name the sensor with --sensor KEY.", code="no_sensor")


def _flush(chunk: list[dict[str, Any]], sensor_key: str | None, report: CsvImportReport) -> None:
    result = readings_ingest(messages=chunk, transport=Transport.CSV, sensor_key=sensor_key, text_values=True)
    report.result.add(result)
    for index, reason in result.rejections:
        report.error(chunk[index]["line"], reason)
