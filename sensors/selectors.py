"""Reads of the catalogue and of readings: the query logic behind the API (and later the pages), written once.

Bucketed queries aggregate inside the database on PostgreSQL and SQLite alike:

- sub-day buckets (`1m` … `12h`) are fixed-length intervals aligned to the Unix epoch in UTC (PostgreSQL
  `date_bin`, epoch arithmetic on SQLite), so an hourly bucket always starts on a UTC hour whatever the zone;
- daily buckets (`1d`) start at local midnight in the requested zone (Django's `TruncDay(tzinfo=...)`), so a
  daylight-saving day is a 23- or 25-hour bucket.

Buckets that are unions of whole UTC hours (`1h` … `12h`, and `1d` in a zone whose offset is whole hours) are read
from the hourly roll-ups (`ReadingHourly`), with the partial hours at the ends of the range from the raw rows: the
same answer (within floating-point rounding of sums) for a fraction of the rows, and still there once raw rows
expired. Other buckets read the raw rows (docs/api.md, "Buckets").
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict

from asgiref.sync import sync_to_async
from django.db import NotSupportedError
from django.db.models import Avg, Count, DateTimeField, Func, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDay

from common.exceptions import ApplicationError
from sensors.filters import InstallationFilter, SensorFilter
from sensors.ingest.rollups import hour_ceil, hour_floor
from sensors.models import HttpSource, Installation, Platform, Reading, ReadingHourly, Sensor

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType

# Bucket name → length in seconds; `None` is the calendar day in the requested zone.
BUCKETS: dict[str, int | None] = {
    "1m": 60,
    "5m": 300,
    "10m": 600,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "3h": 10800,
    "6h": 21600,
    "12h": 43200,
    "1d": None,
}
AGGREGATES = {"avg": Avg, "min": Min, "max": Max, "sum": Sum, "count": Count}
MAX_BUCKETS = 100_000
CSV_CHUNK_ROWS = 5000


# --- catalogue --------------------------------------------------------------------------------------------------


def platform_list() -> QuerySet[Platform]:
    return Platform.objects.order_by("name")


def installation_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[Installation]:
    """Installations with their platform joined (its slug is shown)."""
    queryset = Installation.objects.select_related("platform").order_by("platform__name", "name", "id")
    return InstallationFilter(filters, queryset=queryset).qs if filters is not None else queryset


def sensor_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[Sensor]:
    """Sensors with their platform and external source joined; the latest value is on the row itself."""
    queryset = Sensor.objects.select_related("platform", "source").order_by("key")
    return SensorFilter(filters, queryset=queryset).qs if filters is not None else queryset


def sensor_get(*, key: str) -> Sensor | None:
    return Sensor.objects.filter(key=key).first()


def source_get(*, sensor_key: str) -> HttpSource | None:
    """The external source of a sensor, with its sensor, or None."""
    return HttpSource.objects.select_related("sensor").filter(sensor__key=sensor_key).first()


def _sources_scheduled() -> QuerySet[HttpSource]:
    """The external sources the schedule fetches: enabled, of an active sensor."""
    return HttpSource.objects.filter(enabled=True, sensor__active=True)


def sources_due() -> list[int]:
    """Ids of the sources the schedule fetches, by sensor key."""
    return list(_sources_scheduled().order_by("sensor__key").values_list("pk", flat=True))


def sources_status() -> dict[str, int]:
    """How many external sources the schedule fetches, and how many of them failed their last fetch (one query)."""
    return _sources_scheduled().aggregate(
        enabled=Count("pk"), failing=Count("pk", filter=Q(consecutive_failures__gt=0))
    )


# --- latest values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latest:
    sensor: str
    timestamp: datetime | None
    value: float | None


def readings_latest(*, keys: list[str] | None = None, platform: str | None = None) -> list[Latest]:
    """The latest reading of each named sensor (and/or each sensor of a platform) in one query, by key.

    Unknown keys are left out. The values are the sensors' denormalised `latest_*` fields, which the ingestion
    service keeps at the reading with the greatest timestamp.
    """
    queryset = Sensor.objects.all()
    if keys is not None:
        queryset = queryset.filter(key__in=keys)
    if platform is not None:
        queryset = queryset.filter(platform__slug=platform)
    rows = queryset.order_by("key").values_list("key", "latest_timestamp", "latest_value")
    return [Latest(key, timestamp, value) for key, timestamp, value in rows]


# --- raw readings -----------------------------------------------------------------------------------------------


class ReadingRow(TypedDict):
    timestamp: datetime
    value: float


def reading_list(
    *, sensor: Sensor, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[Reading, ReadingRow]:
    """`{"timestamp", "value"}` rows of one sensor in [start, end), oldest first (served by the unique index)."""
    queryset = Reading.objects.filter(sensor_id=sensor.pk)
    if start is not None:
        queryset = queryset.filter(timestamp__gte=start)
    if end is not None:
        queryset = queryset.filter(timestamp__lt=end)
    return queryset.order_by("timestamp").values("timestamp", "value")


def readings_recent(*, sensor: Sensor, limit: int) -> list[tuple[datetime, float]]:
    """The sensor's last `limit` readings by timestamp as (timestamp, value), oldest first: one backward scan of
    the unique (sensor, timestamp) index, however many readings the sensor has."""
    if limit <= 0:
        return []
    rows = Reading.objects.filter(sensor_id=sensor.pk).order_by("-timestamp").values_list("timestamp", "value")
    return list(reversed(rows[:limit]))


def reading_chunks(
    *, sensor: Sensor, start: datetime | None = None, end: datetime | None = None, size: int | None = None
) -> Iterator[list[tuple[datetime, float]]]:
    """(timestamp, value) rows of [start, end) in chunks of `size` (`CSV_CHUNK_ROWS`), by keyset
    (`timestamp > last`), never OFFSET: each chunk is one index range scan however deep into the range it is, and
    memory stays bounded."""
    size = size or CSV_CHUNK_ROWS
    last = None
    while True:
        queryset = reading_list(sensor=sensor, start=start, end=end)
        if last is not None:
            queryset = queryset.filter(timestamp__gt=last)
        chunk = list(queryset.values_list("timestamp", "value")[:size])
        if chunk:
            yield chunk
        if len(chunk) < size:
            return
        last = chunk[-1][0]


def _next_chunk(chunks: Iterator[list[tuple[datetime, float]]]) -> list[tuple[datetime, float]] | None:
    return next(chunks, None)


async def reading_chunks_async(
    *, sensor: Sensor, start: datetime | None = None, end: datetime | None = None, size: int | None = None
) -> AsyncIterator[list[tuple[datetime, float]]]:
    """`reading_chunks` for async consumers (a `StreamingHttpResponse` under ASGI): each chunk is fetched in the
    sync thread, the event loop is free in between."""
    chunks = reading_chunks(sensor=sensor, start=start, end=end, size=size)
    fetch = sync_to_async(_next_chunk, thread_sensitive=True)
    while True:
        chunk = await fetch(chunks)
        if chunk is None:
            return
        yield chunk


# --- bucketed readings ------------------------------------------------------------------------------------------


class EpochBin(Func):
    """The start of the fixed-length bucket holding a timestamp, buckets aligned to 1970-01-01T00:00Z."""

    output_field = DateTimeField()

    def __init__(self, expression: Any, *, seconds: int) -> None:
        super().__init__(expression)
        self.seconds = int(seconds)  # an int written into the SQL: never user text

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **extra: Any) -> NoReturn:
        raise NotSupportedError(f"Bucketed readings are not implemented on {connection.vendor}.")

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _AsSqlType:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date_bin(INTERVAL '{self.seconds} seconds', {sql}, TIMESTAMPTZ '1970-01-01 00:00:00+00')", params

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _AsSqlType:
        sql, params = compiler.compile(self.source_expressions[0])
        # Django stores UTC text on SQLite; strftime('%s') is its epoch second. The double modulo floors
        # negative epochs (before 1970) too; `datetime(..., 'unixepoch')` gives text Django parses back.
        n = self.seconds
        epoch = f"CAST(strftime('%%s', {sql}) AS INTEGER)"
        return f"datetime({epoch} - ((({epoch} %% {n}) + {n}) %% {n}), 'unixepoch')", (*params, *params)


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime  # aware, in the requested zone
    value: float | int | None


def buckets_bound(*, bucket: str, start: datetime, end: datetime) -> int:
    """The most buckets [start, end) can fall into (a daylight-saving day never adds a bucket: +2 for the ends)."""
    span = (end - start).total_seconds()
    seconds = BUCKETS[bucket]
    if seconds is None:
        return math.ceil(span / 86400) + 2
    return math.ceil(span / seconds) + 1


def readings_bucketed(
    *,
    sensor: Sensor,
    bucket: str,
    agg: str = "avg",
    tz: tzinfo = UTC,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Bucket]:
    """One aggregate per bucket of the sensor's readings in [start, end), computed by the database.

    Buckets without readings are absent. An open range is closed at the sensor's first and latest readings to
    size the result; more than `MAX_BUCKETS` buckets is refused with an `ApplicationError` (400).
    """
    if bucket not in BUCKETS:
        raise ApplicationError("Unknown bucket.", fields={"bucket": [f"Use one of {', '.join(BUCKETS)}."]})
    if agg not in AGGREGATES:
        raise ApplicationError("Unknown aggregate.", fields={"agg": [f"Use one of {', '.join(AGGREGATES)}."]})
    low, high = start, end
    if low is None:
        low = reading_list(sensor=sensor, end=end).values_list("timestamp", flat=True).first()
        # Roll-ups outlive raw rows (retention): the first hour counts too.
        hours = ReadingHourly.objects.filter(sensor_id=sensor.pk).order_by("hour").values_list("hour", flat=True)
        first_hour = hours.filter(hour__lt=end).first() if end is not None else hours.first()
        low = min((moment for moment in (low, first_hour) if moment is not None), default=None)
    if high is None:
        high = sensor.latest_timestamp + timedelta(microseconds=1) if sensor.latest_timestamp else None
    if low is None or high is None:
        return []
    bound = buckets_bound(bucket=bucket, start=low, end=high)
    if bound > MAX_BUCKETS:
        raise ApplicationError(
            f"This range holds up to {bound:,} buckets of {bucket}; the limit is {MAX_BUCKETS:,}. "
            "Use a larger bucket or a shorter range.",
            code="too_many_buckets",
            fields={"bucket": [f"At most {MAX_BUCKETS:,} buckets per query."]},
        )
    seconds = BUCKETS[bucket]
    if rollups_answer(bucket=bucket, tz=tz, low=low, high=high):
        merged = _bucketed_merged(sensor=sensor, bucket=bucket, tz=tz, start=start, end=end)
        if merged is not None:
            return [Bucket(bucket_start.astimezone(tz), _result(agg, stats)) for bucket_start, stats in merged]
    rows = (
        reading_list(sensor=sensor, start=start, end=end)
        .annotate(bucket=_bucket_expression("timestamp", seconds, tz))
        .values("bucket")
        .annotate(result=AGGREGATES[agg]("value"))
        .order_by("bucket")
        .values_list("bucket", "result")
    )
    return [Bucket(bucket_start.astimezone(tz), result) for bucket_start, result in rows]


def _bucket_expression(column: str, seconds: int | None, tz: tzinfo) -> Func:
    return TruncDay(column, tzinfo=tz) if seconds is None else EpochBin(column, seconds=seconds)


def rollups_answer(*, bucket: str, tz: tzinfo, low: datetime, high: datetime) -> bool:
    """Whether the hourly roll-ups give the same buckets as the raw rows: every bucket is a union of whole UTC
    hours. True for buckets of whole hours (aligned to the epoch, as hours are), and for days in a zone whose
    offset is a whole number of hours on every day of [low, high] (DST shifts included: local midnight stays on a
    UTC hour); false for sub-hour buckets and zones such as Asia/Kolkata (+5:30), which read the raw rows."""
    seconds = BUCKETS[bucket]
    if seconds is not None:
        return seconds % 3600 == 0
    day = low.astimezone(tz).date()
    last = high.astimezone(tz).date()
    while day <= last:
        for moment in (datetime.combine(day, time(0), tzinfo=tz), datetime.combine(day, time(12), tzinfo=tz)):
            offset = moment.utcoffset()
            if offset is None or offset.total_seconds() % 3600:
                return False
        day += timedelta(days=1)
    return True


def _bucketed_merged(
    *, sensor: Sensor, bucket: str, tz: tzinfo, start: datetime | None, end: datetime | None
) -> list[tuple[datetime, list[Any]]] | None:
    """(bucket start, [count, sum, min, max]) of each bucket: the whole hours of [start, end) from the roll-ups,
    the partial hours at its ends from the raw rows, merged; None when the range is within one hour (raw is
    cheaper)."""
    first_hour = hour_ceil(start) if start is not None else None
    last_hour = hour_floor(end) if end is not None else None
    if first_hour is not None and last_hour is not None and first_hour >= last_hour:
        return None
    seconds = BUCKETS[bucket]
    hourly = ReadingHourly.objects.filter(sensor_id=sensor.pk)
    if first_hour is not None:
        hourly = hourly.filter(hour__gte=first_hour)
    if last_hour is not None:
        hourly = hourly.filter(hour__lt=last_hour)
    parts: list[Any] = [
        hourly.annotate(bucket=_bucket_expression("hour", seconds, tz))
        .values("bucket")
        .annotate(n=Sum("count"), total=Sum("sum"), low=Min("min"), high=Max("max"))
        .values_list("bucket", "n", "total", "low", "high")
    ]
    for edge_start, edge_end in ((start, first_hour), (last_hour, end)):
        if edge_start is not None and edge_end is not None and edge_start < edge_end:
            parts.append(
                reading_list(sensor=sensor, start=edge_start, end=edge_end)
                .annotate(bucket=_bucket_expression("timestamp", seconds, tz))
                .values("bucket")
                .annotate(n=Count("value"), total=Sum("value"), low=Min("value"), high=Max("value"))
                .values_list("bucket", "n", "total", "low", "high")
            )
    merged: dict[datetime, list[Any]] = {}
    for part in parts:
        for bucket_start, *values in part:
            current = merged.get(bucket_start)
            if current is None:
                merged[bucket_start] = list(values)
            else:
                current[0] += values[0]
                current[1] += values[1]
                current[2] = min(current[2], values[2])
                current[3] = max(current[3], values[3])
    return sorted(merged.items())


def _result(agg: str, stats: list[Any]) -> float | int | None:
    count, total, low, high = stats
    if agg == "count":
        return int(count)
    value = {"sum": total, "min": low, "max": high}.get(agg, total / count)
    return float(value)
