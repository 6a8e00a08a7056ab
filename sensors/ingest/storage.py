"""Storage: one transaction per batch that resolves the sensors, writes the valid readings (COPY on PostgreSQL,
duplicates skipped and counted), keeps the rejections and moves each sensor's latest value; the after-store hooks
run after commit.

Guarantees: a known (or, where `SENSORS_AUTO_REGISTER` allows, a new) active sensor that the caller's device key
may write; one batch insert per call that ignores readings already stored (same sensor and timestamp); each
sensor's latest value is the reading with the greatest timestamp, not the last to arrive; the stored readings
are added to their hourly roll-ups in the same transaction (`rollups`).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.db import copy_rows
from common.exceptions import ApplicationError
from sensors.ingest.decoding import errors_reason
from sensors.ingest.hooks import StoredReading, hooks_run
from sensors.ingest.rejections import Rejection, rejections_store
from sensors.ingest.rollups import rollups_add
from sensors.ingest.validation import ReadingIn, ValidatedBatch
from sensors.models import DeviceKey, Reading, Sensor, SensorKind

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_direct_copy_after = 0  # batches to write the slow way before trying COPY straight into the table again
_SQLITE_CHUNK = 300  # rows per INSERT: 900 parameters, under every SQLite build's limit
_COPY_SAVEPOINT = "sensors_reading_copy"


@dataclass
class IngestResult:
    """Counts of one call: `received` = `stored` + `duplicates` + `rejected`."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    # (index in the call's messages, reason) of each rejected message, in index order.
    rejections: list[tuple[int, str]] = field(default_factory=list, repr=False)

    def add(self, other: IngestResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


@dataclass(frozen=True, slots=True)
class _SensorRef:
    id: int
    key: str
    platform_id: int | None
    active: bool


def readings_store(
    *, batch: ValidatedBatch, transport: str, atomic: bool = False, device_key: DeviceKey | None = None
) -> IngestResult:
    """The second half of `readings_ingest`: one transaction that resolves the sensors, stores the valid
    readings (duplicates skipped and counted), keeps the rejections and moves latest values; hooks after commit."""
    messages = batch.messages
    rejections = list(batch.rejections)
    with transaction.atomic():
        keys = {reading.sensor_key for _, reading in batch.valid}
        sensors = _sensors_resolve(
            keys,
            auto_register=settings.SENSORS_AUTO_REGISTER and device_key is None,
        )
        problems = {key: _sensor_problem(sensors.get(key), key, device_key) for key in keys}
        rows: list[tuple[_SensorRef, ReadingIn]] = []
        for index, reading in batch.valid:
            problem = problems[reading.sensor_key]
            if problem:
                rejections.append(Rejection(index, messages[index], {"sensor": [problem]}, reading.sensor_key))
            else:
                rows.append((sensors[reading.sensor_key], reading))

        if rejections and atomic:
            raise ApplicationError(
                f"{len(rejections)} of {len(messages)} readings are invalid; none was stored.",
                code="validation_error",
                fields={str(r.index): r.errors for r in sorted(rejections, key=lambda r: r.index)},
            )
        if rejections:
            rejections_store(rejections, transport=transport, received_at=batch.received_at)

        stored = _readings_insert(rows)
        # By sensor, then time (a batch usually arrives in order: the sort then only checks it), for the roll-ups
        # and the latest values, which read each sensor's run of readings.
        stored.sort()
        _latest_update(stored)
        # After the sensors' row locks (taken in id order above): batches sharing a sensor are already in line.
        rollups_add(stored)
        if stored:
            transaction.on_commit(lambda: hooks_run(stored))

    return IngestResult(
        received=len(messages),
        stored=len(stored),
        duplicates=len(rows) - len(stored),
        rejected=len(rejections),
        rejections=sorted((r.index, errors_reason(r.errors)) for r in rejections),
    )


def _sensor_problem(ref: _SensorRef | None, key: str, device_key: DeviceKey | None) -> str | None:
    if ref is None:
        return f"Unknown sensor {key!r}."
    if not ref.active:
        return f"Sensor {key!r} is inactive."
    if device_key is not None and not device_key.may_write(sensor_id=ref.id, platform_id=ref.platform_id):
        return f"This device key may not write readings of sensor {key!r}."
    return None


def _sensors_resolve(keys: set[str], *, auto_register: bool) -> dict[str, _SensorRef]:
    if not keys:
        return {}
    fields = ("id", "key", "platform_id", "active")
    found = {row[1]: _SensorRef(*row) for row in Sensor.objects.filter(key__in=keys).values_list(*fields)}
    missing = keys - found.keys()
    if missing and auto_register:
        kinds = set(SensorKind.values)
        Sensor.objects.bulk_create(
            [Sensor(key=key, kind=key if key in kinds else SensorKind.OTHER) for key in sorted(missing)],
            ignore_conflicts=True,  # another consumer may register the same key at the same moment
        )
        logger.info("sensors auto-registered", extra={"sensors": sorted(missing)})
        found.update({row[1]: _SensorRef(*row) for row in Sensor.objects.filter(key__in=missing).values_list(*fields)})
    return found


def _readings_insert(rows: list[tuple[_SensorRef, ReadingIn]]) -> list[StoredReading]:
    """Insert, skipping (sensor, timestamp) pairs already stored; return what was stored."""
    if not rows:
        return []
    table = connection.ops.quote_name(Reading._meta.db_table)
    insert = _insert_postgresql if connection.vendor == "postgresql" else _insert_generic
    returned = insert(table, rows)
    # `returned`: (sensor_id, timestamp, value) of the stored rows; None when all of them were stored.
    new = tuple.__new__  # a StoredReading made through its generated __new__ costs twice as much
    if returned is None:
        return [new(StoredReading, (ref.id, ref.key, reading.timestamp, reading.value)) for ref, reading in rows]
    keys = {ref.id: ref.key for ref, _ in rows}
    return [new(StoredReading, (sensor_id, keys[sensor_id], ts, value)) for sensor_id, ts, value in returned]


def _insert_postgresql(
    table: str, rows: list[tuple[_SensorRef, ReadingIn]]
) -> list[tuple[int, datetime, float]] | None:
    # Fast path: COPY straight into the table (raw COPY speed). A duplicate makes COPY fail as a whole; the
    # savepoint rolls that back and the batch goes the slower way: COPY into a session-local staging table, then
    # one INSERT ... SELECT ... ON CONFLICT DO NOTHING (docs/benchmarks.md). After a batch with duplicates the next
    # batches of this process start on the slow path for a while (replays and re-imports come in runs).
    global _direct_copy_after
    if _direct_copy_after <= 0:
        with connection.cursor() as cursor:
            # Django's foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED): one lookup per reading,
            # a few milliseconds per thousand. Checked during the COPY instead, that work is done before the batch
            # takes its sensors' row locks (latest values), so concurrent writers wait on each other far less.
            # The savepoint and the constraint mode go in one round trip each way (each round trip also waits for
            # the GIL in a busy consumer: these were four of a batch's dozen).
            cursor.execute(f"SAVEPOINT {_COPY_SAVEPOINT}; SET CONSTRAINTS ALL IMMEDIATE")
            try:
                _copy_rows(cursor, table, rows)
            except IntegrityError as exc:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {_COPY_SAVEPOINT}; SET CONSTRAINTS ALL DEFERRED")
                if not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                    raise
                _direct_copy_after = 10
            else:
                cursor.execute(f"SET CONSTRAINTS ALL DEFERRED; RELEASE SAVEPOINT {_COPY_SAVEPOINT}")
                return None  # all stored
    else:
        _direct_copy_after -= 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SET CONSTRAINTS ALL IMMEDIATE; CREATE TEMP TABLE IF NOT EXISTS sensors_reading_incoming "
            '(sensor_id bigint, "timestamp" timestamptz, value double precision) ON COMMIT DELETE ROWS'
        )
        _copy_rows(cursor, "sensors_reading_incoming", rows)
        # Microseconds since the epoch as an integer: exact, and far cheaper to load than timestamptz.
        cursor.execute(
            f'INSERT INTO {table} (sensor_id, "timestamp", value) '  # noqa: S608 (table name from the model)
            'SELECT sensor_id, "timestamp", value FROM sensors_reading_incoming '
            'ON CONFLICT (sensor_id, "timestamp") DO NOTHING '
            'RETURNING sensor_id, (extract(epoch FROM "timestamp") * 1000000)::bigint, value'
        )
        returned = [
            (sensor_id, _EPOCH + timedelta(microseconds=us), value) for sensor_id, us, value in cursor.fetchall()
        ]
        cursor.execute("TRUNCATE sensors_reading_incoming; SET CONSTRAINTS ALL DEFERRED")
    if len(returned) == len(rows):
        _direct_copy_after = 0
    return returned


def _copy_rows(cursor: CursorWrapper, table: str, rows: list[tuple[_SensorRef, ReadingIn]]) -> None:
    # Binary COPY: measured about a quarter faster than text COPY here.
    copy_rows(
        cursor,
        table,
        ("sensor_id", '"timestamp"', "value"),
        ((ref.id, reading.timestamp, reading.value) for ref, reading in rows),
        types=("int8", "timestamptz", "float8"),
    )


def _insert_generic(table: str, rows: list[tuple[_SensorRef, ReadingIn]]) -> list[tuple[int, datetime, float]]:
    adapt = connection.ops.adapt_datetimefield_value
    returned: list[tuple[int, datetime, float]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _SQLITE_CHUNK):
            chunk = rows[start : start + _SQLITE_CHUNK]
            params: list[Any] = []
            for ref, reading in chunk:
                params.extend((ref.id, adapt(reading.timestamp), reading.value))
            placeholders = ",".join(["(%s, %s, %s)"] * len(chunk))
            cursor.execute(
                f'INSERT INTO {table} (sensor_id, "timestamp", value) VALUES {placeholders} '  # noqa: S608
                'ON CONFLICT (sensor_id, "timestamp") DO NOTHING RETURNING sensor_id, "timestamp", value',
                params,
            )
            returned.extend((sensor_id, _as_datetime(ts), value) for sensor_id, ts, value in cursor.fetchall())
    return returned


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _latest_update(by_sensor: list[StoredReading]) -> None:
    """Move each sensor's latest value forward, never back: only a greater timestamp replaces it. `by_sensor` is
    sorted by sensor, then time."""
    # Each sensor's newest reading is the last of its run; (sensor_id + 1,) sorts before every reading of the next.
    newest: dict[int, StoredReading] = {}
    start = 0
    while start < len(by_sensor):
        sensor_id = by_sensor[start][0]
        start = bisect_left(by_sensor, (sensor_id + 1,), lo=start)
        newest[sensor_id] = by_sensor[start - 1]
    if not newest:
        return
    # Sensors are locked in id order, so that concurrent batches (several stream writers) never deadlock with
    # each other, and with NO KEY UPDATE, the lock an UPDATE of non-key columns takes anyway: it lets other
    # batches' foreign-key checks (FOR KEY SHARE on the same sensors) go on. FOR UPDATE would block those checks
    # and deadlock two writers (seen as one-second stalls, PostgreSQL's deadlock_timeout).
    ordered = sorted(newest.items())
    if connection.vendor != "postgresql":
        for sensor_id, reading in ordered:
            Sensor.objects.filter(pk=sensor_id).filter(
                Q(latest_timestamp__isnull=True) | Q(latest_timestamp__lt=reading.timestamp)
            ).update(latest_timestamp=reading.timestamp, latest_value=reading.value)
        return
    table = connection.ops.quote_name(Sensor._meta.db_table)
    ids = [sensor_id for sensor_id, _ in ordered]
    with connection.cursor() as cursor:
        # One statement for any number of sensors (a batch may hold thousands): the locks first, in id order (the
        # materialized CTE), then the update.
        cursor.execute(
            f"WITH locked AS MATERIALIZED (SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE) "  # noqa: S608
            f"UPDATE {table} AS s SET latest_timestamp = v.ts, latest_value = v.value "
            "FROM locked, unnest(%s::bigint[], %s::timestamptz[], %s::float8[]) AS v(id, ts, value) "
            "WHERE s.id = locked.id AND v.id = locked.id "
            "AND (s.latest_timestamp IS NULL OR s.latest_timestamp < v.ts)",
            [ids, ids, [r.timestamp for _, r in ordered], [r.value for _, r in ordered]],
        )
