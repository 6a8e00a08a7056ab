"""Export: every sensor as one document with its platform, installation, readings, detections, anomalies and events.

Memory stays flat whatever the size: readings and detections are read a bucket at a time by keyset pagination on
the (sensor, timestamp) unique index (never a whole series in a list), anomalies and events by id, and written as
they are read. Only platforms, installations and the sensors' own rows (small tables) are held in memory.
"""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.db.models import Q

from archive.services.tables import (
    ANOMALIES,
    BUCKET,
    DETECTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    INSTALLATIONS,
    PLATFORMS,
    READINGS,
    SENSOR_EVENTS,
    SENSORS,
    SYSTEM_EVENTS,
    TABLES,
    Digest,
    Table,
    csv_cell,
    digests_new,
    digests_summary,
    doc_dumps,
    dumps,
    instant_text,
    json_number,
)
from common.exceptions import ApplicationError
from common.jobs import ProgressCallback, ProgressThrottle
from detection.models import Anomaly, Detection, SensorEvent, SystemEvent
from sensors.models import Installation, Platform, Reading, Sensor

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class ExportResult:
    format: str
    counts: dict[str, int]
    checksums: dict[str, str]


@dataclass
class _Scope:
    """What one export holds: the small tables in memory (ordered), the filters for the big ones."""

    since: datetime | None
    platforms: list[list[Any]]
    installations: list[list[Any]]
    sensors: list[list[Any]]  # canonical rows, ordered by key
    sensor_ids: dict[str, int]  # key → id
    emails: dict[int, str]
    series_total: int


def _canonical(table: Table, values: dict[str, Any]) -> list[Any]:
    row = []
    for column in table.columns:
        value = values[column.name]
        if value is not None:
            if column.type == "instant":
                value = instant_text(value)
            elif column.type == "float":
                value = float(value)
        row.append(value)
    return row


def _fields(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name != "sensor"]


def _scope(*, since: datetime | None, platform: str | None) -> _Scope:
    sensors_qs = Sensor.objects.all()
    platforms_qs = Platform.objects.all()
    if platform is not None:
        if not Platform.objects.filter(slug=platform).exists():
            raise ApplicationError(f"No platform with the slug {platform!r}.", code="not_found", status_code=404)
        sensors_qs = sensors_qs.filter(platform__slug=platform)
        platforms_qs = platforms_qs.filter(slug=platform)
    # Sorted in Python, by code point: the order (and so the checksums) must not depend on the database's collation.
    sensors = sorted((_canonical(SENSORS, s) for s in sensors_qs.values(*_fields(SENSORS))), key=lambda r: r[1])
    installation_ids = {row[4] for row in sensors if row[4] is not None}
    installations_qs = Installation.objects.filter(Q(platform__in=platforms_qs) | Q(id__in=installation_ids)).values(
        *_fields(INSTALLATIONS)
    )
    installations = [_canonical(INSTALLATIONS, i) for i in installations_qs]
    platform_ids = {row[1] for row in installations} | {row[3] for row in sensors if row[3] is not None}
    platform_rows = Platform.objects.filter(Q(id__in=platforms_qs.values("id")) | Q(id__in=platform_ids))
    platforms = sorted(
        (_canonical(PLATFORMS, p) for p in platform_rows.values(*_fields(PLATFORMS))), key=lambda r: r[1]
    )
    slug_of = {row[0]: row[1] for row in platforms}
    installations.sort(key=lambda r: (slug_of[r[1]], r[2]))
    sensor_ids = {row[1]: row[0] for row in sensors}
    series_total = 0
    for model in (Reading, Detection):
        qs = model.objects.filter(sensor_id__in=sensors_qs.values("id"))
        if since is not None:
            qs = qs.filter(timestamp__gte=since)
        series_total += qs.count()
    emails = dict(get_user_model().objects.values_list("id", "email"))
    return _Scope(since, platforms, installations, sensors, sensor_ids, emails, series_total)


def _series_pages(
    model: type[models.Model], table: Table, *, sensor_id: int, key: str, since: datetime | None
) -> Iterator[list[list[Any]]]:
    """A sensor's readings or detections in time order, BUCKET rows at a time (keyset pagination)."""
    if connection.vendor == "postgresql":
        yield from _series_pages_sql(model, table, sensor_id=sensor_id, key=key, since=since)
        return
    fields = _fields(table)
    qs = model._default_manager.filter(sensor_id=sensor_id)
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    qs = qs.order_by("timestamp")
    last = None
    while True:
        page_qs = qs if last is None else qs.filter(timestamp__gt=last)
        page = list(page_qs.values_list(*fields)[:BUCKET])
        if not page:
            return
        last = page[-1][0]
        if table is READINGS:
            yield [[key, instant_text(ts), float(value)] for ts, value in page]
        else:
            yield [
                [key, instant_text(ts), None if lv is None else float(lv), None if d is None else float(d), st]
                for ts, lv, d, st in page
            ]
        if len(page) < BUCKET:
            return


# PostgreSQL writes the canonical instant itself: parsing timestamps into datetimes and formatting them again was
# more than half of the export's time. `AT TIME ZONE 'UTC'` makes it independent of the session's zone.
INSTANT_SQL = """to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _series_pages_sql(
    model: type[models.Model], table: Table, *, sensor_id: int, key: str, since: datetime | None
) -> Iterator[list[list[Any]]]:
    columns = ", ".join(connection.ops.quote_name(name) for name in _fields(table)[1:])
    table_name = model._meta.db_table  # names from the models, never from input
    select = f"SELECT {INSTANT_SQL}, {columns} FROM {table_name} WHERE sensor_id = %s"  # noqa: S608
    order = 'ORDER BY "timestamp" LIMIT %s'
    params: list[Any] = [sensor_id, since or datetime.min.replace(tzinfo=UTC)]
    sql = f'{select} AND "timestamp" >= %s {order}'
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [*params, BUCKET])
            page = cursor.fetchall()
            if not page:
                return
            yield [[key, *row] for row in page]
            if len(page) < BUCKET:
                return
            # The next page starts after the last instant (microseconds: the text is exact).
            sql, params = f'{select} AND "timestamp" > %s {order}', [sensor_id, datetime.fromisoformat(page[-1][0])]


def _rows_by_id(qs: models.QuerySet[Any], table: Table, *, key: str, emails: dict[int, str]) -> Iterator[list[Any]]:
    """Rows of a per-sensor table in id order, 2,000 at a time (keyset pagination on the primary key)."""
    fields = [f for f in _fields(table) if f not in ("acknowledged_by", "resolved_by")]
    if table is ANOMALIES:
        fields += ["acknowledged_by_id", "resolved_by_id"]
    last = 0
    while True:
        page = list(qs.filter(id__gt=last).order_by("id").values(*fields)[:2000])
        for values in page:
            values["sensor"] = key
            if table is ANOMALIES:
                values["acknowledged_by"] = emails.get(values.pop("acknowledged_by_id"))
                values["resolved_by"] = emails.get(values.pop("resolved_by_id"))
            yield _canonical(table, values)
        if len(page) < 2000:
            return
        last = page[-1]["id"]


def _sensor_rows(scope: _Scope, table: Table, sensor_id: int, key: str) -> Iterator[list[Any]]:
    since = scope.since
    qs: models.QuerySet[Any]
    if table is ANOMALIES:
        qs = Anomaly.objects.filter(sensor_id=sensor_id)
        if since is not None:
            # Also the anomalies that an exported event points to, so that no event loses its anomaly.
            linked = SensorEvent.objects.filter(sensor_id=sensor_id, at__gte=since, anomaly__isnull=False)
            qs = qs.filter(Q(ended_at__gte=since) | Q(id__in=linked.values("anomaly_id")))
        return _rows_by_id(qs, table, key=key, emails=scope.emails)
    if table is SENSOR_EVENTS:
        qs = SensorEvent.objects.filter(sensor_id=sensor_id)
        if since is not None:
            qs = qs.filter(at__gte=since)
        return _rows_by_id(qs, table, key=key, emails=scope.emails)
    if table is SYSTEM_EVENTS:
        qs = SystemEvent.objects.filter(sensor_id=sensor_id)
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        return _rows_by_id(qs, table, key=key, emails=scope.emails)
    raise AssertionError(table.name)


def _item(table: Table, row: list[Any]) -> dict[str, Any]:
    """A row of a per-sensor table as an object inside its sensor's document (the sensor is the document)."""
    return {c.name: v for c, v in zip(table.columns, row, strict=True) if c.name != "sensor"}


@contextlib.contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the database for the whole export (its counts and checksums match its rows)."""
    outermost = not connection.in_atomic_block  # inside a caller's transaction (a test, an import) it is theirs
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _header(scope: _Scope, *, fmt: str, platform: str | None) -> dict[str, Any]:
    return {
        "type": "header",
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "exported_at": instant_text(datetime.now(UTC)),
        "database": connection.vendor,
        "filters": {"since": instant_text(scope.since), "platform": platform},
        "bucket": BUCKET,
        "columns": {table.name: table.column_names for table in TABLES},
    }


def archive_export(
    *,
    out: IO[bytes],
    format: str = "jsonl",  # noqa: A002  (the option's name)
    since: datetime | None = None,
    platform: str | None = None,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Write the archive of the sensors (of `platform`, when given) to `out`, with the readings, detections,
    anomalies and events from `since` on (all when None).

    Guarantees: one consistent snapshot (a repeatable-read transaction on PostgreSQL); memory independent of the
    number of readings; the trailer (JSON lines) or `manifest.json` (zip of CSV) carries every table's row count and
    checksum, equal to what `archive_digests` computes on a database holding exactly these rows.
    """
    if format not in FORMATS:
        raise ApplicationError(f"Unknown format {format!r}: use jsonl or csv.", fields={"format": ["jsonl or csv"]})
    if since is not None and since.tzinfo is None:
        raise ApplicationError("since needs a UTC offset.", fields={"since": ["an aware ISO 8601 instant"]})
    tick = ProgressThrottle(progress)
    with _snapshot():
        scope = _scope(since=since, platform=platform)
        header = _header(scope, fmt=format, platform=platform)
        digests = digests_new()
        if format == "jsonl":
            _write_jsonl(out, scope, header, digests, tick)
        else:
            _write_csv_zip(out, scope, header, digests, tick)
    counts, checksums = digests_summary(digests)
    tick(scope.series_total, scope.series_total, "done", force=True)
    return ExportResult(format=format, counts=counts, checksums=checksums)


class _Progress:
    def __init__(self, tick: ProgressThrottle, total: int) -> None:
        self.tick = tick
        self.total = total
        self.done = 0

    def add(self, rows: int, message: str) -> None:
        self.done += rows
        self.tick(self.done, self.total, message)


def _write_jsonl(
    out: IO[bytes], scope: _Scope, header: dict[str, Any], digests: dict[str, Digest], tick: ProgressThrottle
) -> None:
    def write(text: str) -> None:
        out.write(text.encode())

    write(doc_dumps(header) + "\n")
    installations_of: dict[int, list[list[Any]]] = {}
    for row in scope.installations:
        installations_of.setdefault(row[1], []).append(row)
    platforms_by_id = {row[0]: row for row in scope.platforms}
    installations_by_id = {row[0]: row for row in scope.installations}
    for row in scope.platforms:
        digests["platforms"].add(PLATFORMS, row)
        own = installations_of.get(row[0], [])
        for inst in own:
            digests["installations"].add(INSTALLATIONS, inst)
        doc = {"type": "platform", **_item(PLATFORMS, row), "installations": [_item(INSTALLATIONS, i) for i in own]}
        write(doc_dumps(doc) + "\n")

    done = _Progress(tick, scope.series_total)
    for sensor in scope.sensors:
        sensor_id, key = sensor[0], sensor[1]
        key_json = dumps(key)
        digests["sensors"].add(SENSORS, sensor)
        head = {"type": "sensor", **_item(SENSORS, sensor)}
        platform_row = platforms_by_id.get(sensor[3])
        installation_row = installations_by_id.get(sensor[4])
        head["platform"] = None if platform_row is None else _item(PLATFORMS, platform_row)
        head["installation"] = None if installation_row is None else _item(INSTALLATIONS, installation_row)
        write(doc_dumps(head)[:-1])  # the document stays open: its lists follow, streamed
        for table in (ANOMALIES, SENSOR_EVENTS, SYSTEM_EVENTS):
            write(f',"{table.name}":[')
            first = True
            for row in _sensor_rows(scope, table, sensor_id, key):
                digests[table.name].add(table, row)
                write(("" if first else ",") + doc_dumps(_item(table, row)))
                first = False
            write("]")
        # The first bucket of each series goes in the sensor's document, the rest in bucket documents after it.
        later: dict[str, Iterator[list[list[Any]]]] = {}
        for table, model in ((READINGS, Reading), (DETECTIONS, Detection)):
            pages = _series_pages(model, table, sensor_id=sensor_id, key=key, since=scope.since)
            page: list[list[Any]] = next(pages, [])
            write(f',"{table.name}":[' + _series_items(key_json, page, digests[table.name]) + "]")
            done.add(len(page), f"{key}: {table.name}")
            later[table.name] = pages
        write("}\n")
        for table_name, pages in later.items():
            for page in pages:
                items = _series_items(key_json, page, digests[table_name])
                write(f'{{"type":"{table_name}","sensor":{key_json},"{table_name}":[{items}]}}\n')
                done.add(len(page), f"{key}: {table_name}")

    counts, checksums = digests_summary(digests)
    write(doc_dumps({"type": "trailer", "counts": counts, "checksums": checksums}) + "\n")


def _series_items(key_json: str, page: list[list[Any]], digest: Digest) -> str:
    """The items of a bucket as JSON text, each added to the digest. Readings and detections are formatted by
    hand, exactly as `dumps` would (a test holds them equal): `dumps` per row would halve the export's speed."""
    items = []
    statuses: dict[str, str] = {}
    for row in page:
        if len(row) == 3:
            items.append(f'["{row[1]}",{json_number(row[2])}]')
        else:
            status = statuses.get(row[4]) or statuses.setdefault(row[4], dumps(row[4]))
            items.append(f'["{row[1]}",{json_number(row[2])},{json_number(row[3])},{status}]')
    prefix = "[" + key_json + ","
    digest.add_lines([prefix + text[1:] for text in items])
    return ",".join(items)


def _table_rows(scope: _Scope, table: Table, done: _Progress | None = None) -> Iterator[list[Any]]:
    """Every row of one table in the archive's order (the order its checksum is taken in)."""
    if table is PLATFORMS:
        yield from scope.platforms
    elif table is INSTALLATIONS:
        yield from scope.installations
    elif table is SENSORS:
        yield from scope.sensors
    elif table in (READINGS, DETECTIONS):
        model = Reading if table is READINGS else Detection
        for sensor in scope.sensors:
            for page in _series_pages(model, table, sensor_id=sensor[0], key=sensor[1], since=scope.since):
                yield from page
                if done is not None:
                    done.add(len(page), f"{sensor[1]}: {table.name}")
    else:
        for sensor in scope.sensors:
            yield from _sensor_rows(scope, table, sensor[0], sensor[1])


def _write_csv_zip(
    out: IO[bytes], scope: _Scope, header: dict[str, Any], digests: dict[str, Digest], tick: ProgressThrottle
) -> None:
    done = _Progress(tick, scope.series_total)
    # zipfile writes to a pipe too (no seeking): each member's sizes follow its data.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for table in TABLES:
            with archive.open(f"{table.name}.csv", "w", force_zip64=True) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(table.column_names)
                digest = digests[table.name]
                for row in _table_rows(scope, table, done):
                    digest.add(table, row)
                    writer.writerow([csv_cell(c, v) for c, v in zip(table.columns, row, strict=True)])
                text.flush()
                text.detach()
        counts, checksums = digests_summary(digests)
        manifest = {**header, "type": "manifest", "counts": counts, "checksums": checksums}
        archive.writestr("manifest.json", doc_dumps(manifest) + "\n")


def archive_digests(*, progress: ProgressCallback | None = None) -> dict[str, Digest]:
    """Count and checksum of every archive table over the whole database, in the archive's order: what an
    export of everything would carry. Import compares them with the file's after a restore."""
    tick = ProgressThrottle(progress)
    with _snapshot():
        scope = _scope(since=None, platform=None)
        digests = digests_new()
        done = _Progress(tick, scope.series_total)
        for table in TABLES:
            digest = digests[table.name]
            for row in _table_rows(scope, table, done):
                digest.add(table, row)
    return digests
