"""The archive's tables: their columns, the canonical form of a row, and the checksum of a table.

Both formats (JSON lines and the zip of CSV files) carry the same rows; a row's canonical form is the JSON array of
its checked columns' values, written compactly (`[...]` with `,` between values, keys of objects sorted, floats as
Python's shortest round-tripping `repr`, instants as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC). A table's checksum is
the SHA-256 of the canonical rows in the archive's order, each followed by a newline: so the checksum does not
depend on the format, and import recomputes it from the restored database to prove the restore exact
(docs/archive.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT_NAME = "sensorhub-archive"
FORMAT_VERSION = 1
# Readings and detections go in pieces of this many rows: MongoDB's bucket pattern. One document with a sensor's
# whole series would pass MongoDB's 16 MB limit and any reader's memory at tens of millions of readings.
BUCKET = 10_000
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class ArchiveFormatError(ValueError):
    """A value in an archive file that does not fit its column (the caller adds where it was)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # int, str, float, instant, bool, json
    nullable: bool = False
    checked: bool = True  # part of the table's checksum (user links are not: users are not in the archive)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    # Rows that belong to one sensor carry its key in `sensor` (JSON lines: implied by the sensor document).
    per_sensor: bool = False
    checked_indices: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checked_indices", tuple(i for i, c in enumerate(self.columns) if c.checked))

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _c(name: str, type_: str, nullable: bool = False, checked: bool = True) -> Column:
    return Column(name, type_, nullable, checked)


PLATFORMS = Table(
    "platforms",
    (
        _c("id", "int"),
        _c("slug", "str"),
        _c("name", "str"),
        _c("description", "str"),
        _c("latitude", "float", True),
        _c("longitude", "float", True),
        _c("created_at", "instant"),
    ),
)
INSTALLATIONS = Table(
    "installations",
    (
        _c("id", "int"),
        _c("platform_id", "int"),
        _c("name", "str"),
        _c("height", "float", True),
        _c("orientation", "float", True),
        _c("volume", "float", True),
        _c("porosity", "json"),
        _c("created_at", "instant"),
    ),
)
SENSORS = Table(
    "sensors",
    (
        _c("id", "int"),
        _c("key", "str"),
        _c("name", "str"),
        _c("platform_id", "int", True),
        _c("installation_id", "int", True),
        _c("x", "float", True),
        _c("y", "float", True),
        _c("z", "float", True),
        _c("kind", "str"),
        _c("unit", "str"),
        _c("active", "bool"),
        _c("detection_enabled", "bool"),
        _c("created_at", "instant"),
        _c("latest_timestamp", "instant", True),
        _c("latest_value", "float", True),
    ),
)
READINGS = Table("readings", (_c("sensor", "str"), _c("timestamp", "instant"), _c("value", "float")), per_sensor=True)
DETECTIONS = Table(
    "detections",
    (
        _c("sensor", "str"),
        _c("timestamp", "instant"),
        _c("level", "float", True),
        _c("distance", "float", True),
        _c("status", "str"),
    ),
    per_sensor=True,
)
ANOMALIES = Table(
    "anomalies",
    (
        _c("id", "int"),
        _c("sensor", "str"),
        _c("started_at", "instant"),
        _c("ended_at", "instant"),
        _c("closed_at", "instant", True),
        _c("peak_level", "float"),
        _c("peak_at", "instant"),
        _c("peak_status", "str"),
        _c("flagged", "int"),
        _c("status", "str"),
        _c("acknowledged_by", "str", True, checked=False),
        _c("acknowledged_at", "instant", True),
        _c("resolved_by", "str", True, checked=False),
        _c("resolved_at", "instant", True),
        _c("note", "str"),
    ),
    per_sensor=True,
)
SENSOR_EVENTS = Table(
    "sensor_events",
    (
        _c("id", "int"),
        _c("sensor", "str"),
        _c("kind", "str"),
        _c("at", "instant"),
        _c("level", "float", True),
        _c("anomaly_id", "int", True),
        _c("message", "str"),
        _c("created_at", "instant"),
    ),
    per_sensor=True,
)
SYSTEM_EVENTS = Table(
    "system_events",
    (
        # Not kept: the jobs' own system events (no sensor, never archived) may hold these ids in the target.
        _c("id", "int", checked=False),
        _c("sensor", "str"),
        _c("kind", "str"),
        _c("job", "str"),
        _c("message", "str"),
        _c("data", "json"),
        _c("created_at", "instant"),
    ),
    per_sensor=True,
)

# In the order a restore must write them (a row's references come before it).
TABLES: tuple[Table, ...] = (
    PLATFORMS,
    INSTALLATIONS,
    SENSORS,
    ANOMALIES,
    SENSOR_EVENTS,
    SYSTEM_EVENTS,
    READINGS,
    DETECTIONS,
)
TABLES_BY_NAME = {table.name: table for table in TABLES}


# --- canonical values ------------------------------------------------------------------------------------------


def instant_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.strftime(INSTANT_FORMAT)


def json_number(value: float | None) -> str:
    """`dumps(value)` for a float or None, without building an encoder (per reading, this is the export's hot path)."""
    return "null" if value is None else float_text(value)


def dumps(value: Any) -> str:
    """The one JSON writer of the archive: compact, keys sorted, UTF-8 kept (the canonical form)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=True)


def doc_dumps(value: Any) -> str:
    """JSON of a document's structure: compact, keys in the order written (`type` first, columns in order)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def parse_value(column: Column, value: Any) -> Any:
    """A value read from a JSON document, checked against its column; instants are returned as canonical text
    (their datetime comes from `instant_value`)."""
    if value is None:
        if column.nullable:
            return None
        raise ArchiveFormatError(f"{column.name} may not be empty")
    kind = column.type
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArchiveFormatError(f"{column.name} must be an integer, not {value!r:.40}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArchiveFormatError(f"{column.name} must be a number, not {value!r:.40}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ArchiveFormatError(f"{column.name} must be a string, not {value!r:.40}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ArchiveFormatError(f"{column.name} must be true or false, not {value!r:.40}")
        return value
    if kind == "instant":
        if not isinstance(value, str):
            raise ArchiveFormatError(f"{column.name} must be an ISO 8601 instant, not {value!r:.40}")
        return instant_text(instant_value(column, value))
    if kind == "json":
        return value
    raise AssertionError(kind)


def instant_value(column: Column, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ArchiveFormatError(f"{column.name} is not an ISO 8601 instant: {text!r:.40}") from None
    if value.tzinfo is None:
        raise ArchiveFormatError(f"{column.name} has no UTC offset: {text!r:.40}")
    return value


# --- CSV cells -------------------------------------------------------------------------------------------------


def csv_cell(column: Column, value: Any) -> str:
    """A canonical value as a CSV cell: empty for null, true/false, floats by repr, JSON as text."""
    if value is None:
        return ""
    if column.type == "bool":
        return "true" if value else "false"
    if column.type == "float":
        return float_text(value)
    if column.type == "json":
        return dumps(value)
    return str(value)


def float_text(value: float) -> str:
    """repr for finite floats; NaN and the infinities as JSON's extensions and Python's float() spell them."""
    if math.isfinite(value):
        return float.__repr__(value)  # float's own repr, also for float subclasses (numpy's prints its type)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def parse_cell(column: Column, text: str) -> Any:
    """A CSV cell back to its canonical value (the inverse of `csv_cell`)."""
    if text == "" and (column.nullable or column.type != "str"):
        return parse_value(column, None)
    kind = column.type
    try:
        if kind == "int":
            return parse_value(column, int(text))
        if kind == "float":
            return parse_value(column, float(text))
        if kind == "bool":
            if text not in ("true", "false"):
                raise ArchiveFormatError(f"{column.name} must be true or false, not {text!r:.40}")
            return text == "true"
        if kind == "json":
            return json.loads(text)
    except ValueError as exc:
        if isinstance(exc, ArchiveFormatError):
            raise
        raise ArchiveFormatError(f"{column.name}: {text!r:.40} is not a {kind}") from None
    return parse_value(column, text)


# --- checksums -------------------------------------------------------------------------------------------------


class Digest:
    """Count and SHA-256 of one table's canonical rows, fed in the archive's order."""

    __slots__ = ("count", "_hash")

    def __init__(self) -> None:
        self.count = 0
        self._hash = hashlib.sha256()

    def add_line(self, line: str) -> None:
        """Add one row given as its canonical line (see `canonical_line`)."""
        self.count += 1
        self._hash.update(line.encode())
        self._hash.update(b"\n")

    def add_lines(self, lines: list[str]) -> None:
        """Add rows given as canonical lines, in order (one hash update for many rows)."""
        if lines:
            self.count += len(lines)
            self._hash.update(("\n".join(lines) + "\n").encode())

    def add(self, table: Table, row: list[Any]) -> None:
        self.add_line(canonical_line(table, row))

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def canonical_line(table: Table, row: list[Any]) -> str:
    if len(table.checked_indices) == len(table.columns):
        return dumps(row)
    return dumps([row[i] for i in table.checked_indices])


def digests_new() -> dict[str, Digest]:
    return {table.name: Digest() for table in TABLES}


def digests_summary(digests: dict[str, Digest]) -> tuple[dict[str, int], dict[str, str]]:
    return (
        {name: digest.count for name, digest in digests.items()},
        {name: digest.hexdigest for name, digest in digests.items()},
    )
