"""Hourly roll-ups (`ReadingHourly`): kept current by the storage step, verified and completed from raw rows.

`rollups_add` runs inside the storage transaction with exactly the readings that call stored (duplicates are
skipped before they get here), so a late reading or a re-import lands in its hour, and a rolled-back batch leaves
no trace. One statement per batch merges each (sensor, hour)'s count, sum, min, max and first/last timestamps into
the stored row (an upsert that adds, never replaces).

`rollups_complete` verifies a range against the raw rows and fixes every hour whose raw rows outnumber its roll-up
(rows written around the ingestion service, e.g. by a bulk load or before roll-ups existed). An hour whose raw
rows are fewer than its roll-up counts is left alone: its raw rows were partly deleted by retention, and the roll-up
is the only full record left.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from django.db import connection

from sensors.ingest.hooks import StoredReading
from sensors.models import Reading, ReadingHourly

_HOUR = timedelta(hours=1)
_SQLITE_CHUNK = 100  # rows per statement: 800 parameters, under every SQLite build's limit

_VALUE = itemgetter(3)  # a StoredReading's value


def hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment` (aware)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    """The first UTC hour start at or after `moment`."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def rollups_add(ordered: Sequence[StoredReading]) -> int:
    """Add freshly stored readings to their hourly roll-ups, in the caller's transaction; returns the hours touched.

    The caller guarantees each reading was stored by this transaction (never a duplicate), so adding is exact, and
    hands them sorted (StoredReading tuples sort by sensor, then time), as the storage step does once for this and
    the latest values.
    """
    # Each hour of a sensor is one run of readings whose end a binary search finds; its statistics are taken by
    # builtins over a slice, so that no Python code runs per reading (the loop this replaced was a tenth of the
    # stream consumer's CPU).
    rows: list[list[Any]] = []
    start, count = 0, len(ordered)
    while start < count:
        sensor_id, key, stamp, _ = ordered[start]
        hour = hour_floor(stamp)
        # (sensor_id, key, next hour) sorts before every reading of the next hour, and after this hour's ones.
        end = bisect_left(ordered, (sensor_id, key, hour + _HOUR), lo=start)
        values = list(map(_VALUE, ordered[start:end]))
        # Sorted by (sensor, hour): concurrent writers lock the rows they update in one order, and never deadlock.
        rows.append([sensor_id, hour, end - start, sum(values), min(values), max(values), stamp, ordered[end - 1][2]])
        start = end
    if rows:
        _upsert(rows)
    return len(rows)


def _upsert(rows: Sequence[Sequence[Any]]) -> None:
    table = connection.ops.quote_name(ReadingHourly._meta.db_table)
    columns = "sensor_id, hour, count, sum, min, max, first_timestamp, last_timestamp"
    if connection.vendor == "postgresql":
        least, greatest = "least", "greatest"
    else:
        least, greatest = "min", "max"  # SQLite's scalar min/max of two values
    merge = (
        f"ON CONFLICT (sensor_id, hour) DO UPDATE SET count = {table}.count + excluded.count, "
        f"sum = {table}.sum + excluded.sum, min = {least}({table}.min, excluded.min), "
        f"max = {greatest}({table}.max, excluded.max), "
        f"first_timestamp = {least}({table}.first_timestamp, excluded.first_timestamp), "
        f"last_timestamp = {greatest}({table}.last_timestamp, excluded.last_timestamp)"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for any number of hours: arrays of the columns, unnested.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 (table name from the model)
                "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::bigint[], %s::float8[], %s::float8[], "
                f"%s::float8[], %s::timestamptz[], %s::timestamptz[]) {merge}",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        adapt = connection.ops.adapt_datetimefield_value
        for start in range(0, len(rows), _SQLITE_CHUNK):
            chunk = rows[start : start + _SQLITE_CHUNK]
            params: list[Any] = []
            for sensor_id, hour, count, total, low, high, first, last in chunk:
                params.extend((sensor_id, adapt(hour), count, total, low, high, adapt(first), adapt(last)))
            placeholders = ",".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            # `WHERE true` lets SQLite's parser tell the upsert clause from a join (its documented ambiguity).
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM (VALUES {placeholders}) WHERE true {merge}",  # noqa: S608
                params,
            )


def _hour_sql() -> str:
    if connection.vendor == "postgresql":
        return "date_bin(INTERVAL '1 hour', r.\"timestamp\", TIMESTAMPTZ '1970-01-01 00:00:00+00')"
    # Django keeps UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]" on SQLite.
    return "strftime('%%Y-%%m-%%d %%H:00:00', r.\"timestamp\")"


def rollups_complete(
    *, start: datetime | None = None, end: datetime | None = None, sensor_ids: Sequence[int] | None = None
) -> int:
    """Verify the roll-ups of the hours in [start, end) (whole UTC hours; None is open) against the raw rows and
    rewrite every hour whose raw rows outnumber its roll-up's count (or that has none); returns the hours fixed.

    Afterwards every hour of the range that holds raw rows has a roll-up counting at least all of them: it is
    safe to drop those rows. Hours whose raw rows were partly deleted earlier keep their (fuller) roll-up.
    """
    readings = connection.ops.quote_name(Reading._meta.db_table)
    hourly = connection.ops.quote_name(ReadingHourly._meta.db_table)
    where: list[str] = ["true"]
    params: list[Any] = []
    if start is not None:
        where.append('r."timestamp" >= %s')
        params.append(hour_floor(start))
    if end is not None:
        where.append('r."timestamp" < %s')
        params.append(hour_ceil(end))
    if sensor_ids is not None:
        if not sensor_ids:
            return 0
        where.append(f"r.sensor_id IN ({', '.join(['%s'] * len(sensor_ids))})")
        params.extend(sensor_ids)
    raw = (
        f"SELECT r.sensor_id, {_hour_sql()} AS hour, count(*) AS count, sum(r.value) AS sum, min(r.value) AS min, "  # noqa: S608
        f'max(r.value) AS max, min(r."timestamp") AS first_timestamp, max(r."timestamp") AS last_timestamp '
        f"FROM {readings} r WHERE {' AND '.join(where)} GROUP BY 1, 2"
    )
    columns = "sensor_id, hour, count, sum, min, max, first_timestamp, last_timestamp"
    # Only the hours whose raw rows outnumber the roll-up (or that have none) are rewritten: the upsert replaces.
    statement = (
        f"INSERT INTO {hourly} ({columns}) "  # noqa: S608
        f"SELECT raw.{columns.replace(', ', ', raw.')} FROM ({raw}) raw "
        f"LEFT JOIN {hourly} h ON h.sensor_id = raw.sensor_id AND h.hour = raw.hour "
        "WHERE h.id IS NULL OR h.count < raw.count "
        "ON CONFLICT (sensor_id, hour) DO UPDATE SET count = excluded.count, sum = excluded.sum, "
        "min = excluded.min, max = excluded.max, first_timestamp = excluded.first_timestamp, "
        "last_timestamp = excluded.last_timestamp"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return int(cursor.rowcount)
