"""The ingestion service: the one path every reading takes, whichever way it arrives.

pub/sub, streams, MQTT, REST, CSV, external sources and the simulator all call `readings_ingest`. It guarantees:

- validation: a known (or, where `SENSORS_AUTO_REGISTER` allows, a new) active sensor; a finite float value; an
  ISO 8601 timestamp, naive ones read in `SENSORS_NAIVE_TIMEZONE`, none more than `SENSORS_MAX_FUTURE_SECONDS`
  ahead of the receive time;
- one batch insert per call that ignores readings already stored (same sensor and timestamp) and counts them;
- each sensor's latest value is the reading with the greatest timestamp, not the last to arrive;
- after commit, the stored readings go to the hooks in `SENSORS_INGEST_HOOKS` (live broadcast, detection);
- bad input becomes a `RejectedMessage` with its reason, or, with `atomic=True` (REST), an `ApplicationError`
  naming each bad index and field with nothing of the call stored. It never stops the caller otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from zoneinfo import ZoneInfo

import psycopg
from django.conf import settings
from django.core.signals import setting_changed
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone
from django.utils.module_loading import import_string

from common.db import copy_rows
from common.exceptions import ApplicationError
from sensors.models import SENSOR_KEY_PATTERN, IngestSource, Reading, RejectedMessage, Sensor, SensorKind

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

    from accounts.models import DeviceKey

logger = logging.getLogger(__name__)

_KEY_RE = re.compile(SENSOR_KEY_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_direct_copy_after = 0  # batches to write the slow way before trying COPY straight into the table again
_SQLITE_CHUNK = 300  # rows per INSERT: 900 parameters, under every SQLite build's limit


class ReadingInvalid(Exception):
    """One message failed validation; `errors` maps each field to its problems."""

    def __init__(self, errors: dict[str, list[str]], *, sensor_key: str = "") -> None:
        super().__init__(errors_reason(errors))
        self.errors = errors
        self.sensor_key = sensor_key


class ReadingIn(NamedTuple):
    """A validated reading, not yet tied to a stored sensor."""

    sensor_key: str
    timestamp: datetime
    value: float


class StoredReading(NamedTuple):
    """A reading this call stored (duplicates excluded): what the hooks receive."""

    sensor_id: int
    sensor_key: str
    timestamp: datetime
    value: float


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


@dataclass(slots=True)
class _Rejection:
    index: int
    message: Any
    errors: dict[str, list[str]]
    sensor_key: str = ""


@dataclass(frozen=True, slots=True)
class _SensorRef:
    id: int
    key: str
    platform_id: int | None
    active: bool


# --- validation -------------------------------------------------------------------------------------------------


def naive_timezone() -> ZoneInfo:
    return ZoneInfo(settings.SENSORS_NAIVE_TIMEZONE)


def message_decode(message: Any, *, limit: int | None = None) -> Mapping[str, Any]:
    """A raw message (bytes, str or an already decoded mapping) as a mapping, or `ReadingInvalid`.

    Text over `limit` bytes (default `SENSORS_MAX_MESSAGE_BYTES`) is refused unread.
    """
    if type(message) is not bytes:  # bytes first: what Redis and MQTT deliver
        if isinstance(message, Mapping):
            return message
        if isinstance(message, bytearray | memoryview):
            message = bytes(message)
        elif isinstance(message, str):
            message = message.encode("utf-8", errors="replace")
        else:
            raise ReadingInvalid({"payload": [f"Expected a JSON object, got {type(message).__name__}."]})
    limit = settings.SENSORS_MAX_MESSAGE_BYTES if limit is None else limit
    if len(message) > limit:
        raise ReadingInvalid({"payload": [f"The message is {len(message)} bytes; the limit is {limit}."]})
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise ReadingInvalid({"payload": ["The message is not UTF-8 text."]}) from None
    try:
        data = _DECODER.decode(text)
    except ReadingInvalid:
        raise
    except (ValueError, RecursionError) as exc:
        raise ReadingInvalid({"payload": [f"Not valid JSON: {exc}."]}) from None
    if type(data) is not dict:
        raise ReadingInvalid({"payload": [f"Expected a JSON object, got a JSON {type(data).__name__}."]})
    return data


def _reject_constant(name: str) -> NoReturn:
    raise ReadingInvalid({"value": [f"{name} is not a finite number."]})


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def reading_parse(
    data: Mapping[str, Any],
    *,
    sensor_key: str | None = None,
    received_at: datetime,
    text_values: bool = False,
    zone: ZoneInfo | None = None,
    latest: datetime | None = None,
) -> ReadingIn:
    """Validate one decoded message; every problem is reported, per field.

    `sensor_key` supplies the sensor when the message does not (MQTT topic, `import_readings --sensor`); a
    message naming another sensor is refused. `text_values` accepts values written as text (CSV cells, stream
    fields); JSON messages must carry numbers.
    """
    errors: dict[str, list[str]] = {}
    key = _parse_sensor(data, sensor_key, errors)
    value = _parse_value(data, text_values, errors)
    latest = received_at + timedelta(seconds=settings.SENSORS_MAX_FUTURE_SECONDS) if latest is None else latest
    timestamp = _parse_timestamp(data, latest, errors, zone or naive_timezone())
    if errors or key is None or value is None or timestamp is None:
        raise ReadingInvalid(errors, sensor_key=key or "")
    return ReadingIn(sensor_key=key, timestamp=timestamp, value=value)


def _parse_sensor(data: Mapping[str, Any], default: str | None, errors: dict[str, list[str]]) -> str | None:
    key = data.get("sensor", default)
    if key is None or key == "":
        errors["sensor"] = ["This field is required."]
        return None
    if not isinstance(key, str):
        errors["sensor"] = [f"Must be a string, not {_json_type(key)}."]
        return None
    key = key.strip()
    if default is not None and key != default:
        errors["sensor"] = [f"The message names sensor {key[:100]!r} but was sent for {default!r}."]
        return None
    if not _KEY_RE.match(key):
        errors["sensor"] = [
            "A sensor key is 1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit."
        ]
        return None
    return key


def _parse_value(data: Mapping[str, Any], text_values: bool, errors: dict[str, list[str]]) -> float | None:
    if "value" not in data or data["value"] is None:
        errors["value"] = ["This field is required."]
        return None
    raw = data["value"]
    if isinstance(raw, bool):
        errors["value"] = ["Must be a number, not a boolean."]
        return None
    if isinstance(raw, str) and text_values:
        try:
            value = float(raw.strip())
        except ValueError:
            errors["value"] = [f"{raw[:50]!r} is not a number."]
            return None
    elif isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:
            errors["value"] = ["The number is too large for a float."]
            return None
    else:
        errors["value"] = [f"Must be a number, not {_json_type(raw)}."]
        return None
    if not math.isfinite(value):
        errors["value"] = ["Must be a finite number (not NaN or infinity)."]
        return None
    return value


def _parse_timestamp(
    data: Mapping[str, Any], latest: datetime, errors: dict[str, list[str]], zone: ZoneInfo
) -> datetime | None:
    raw = data.get("timestamp")
    if raw is None or raw == "":
        errors["timestamp"] = ["This field is required."]
        return None
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            errors["timestamp"] = [f"{raw[:50]!r} is not an ISO 8601 date and time."]
            return None
    else:
        errors["timestamp"] = [f"Must be an ISO 8601 string, not {_json_type(raw)}."]
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        errors["timestamp"] = ["The date is out of range."]
        return None
    if parsed > latest:
        errors["timestamp"] = [
            f"{parsed.isoformat()} is more than {settings.SENSORS_MAX_FUTURE_SECONDS} s in the future."
        ]
        return None
    return parsed


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


# --- the service ------------------------------------------------------------------------------------------------


@dataclass
class ValidatedBatch:
    """Messages after validation, before any database work: what `readings_store` writes."""

    messages: Sequence[Any]
    received_at: datetime
    valid: list[tuple[int, ReadingIn]]
    rejections: list[_Rejection]


def readings_ingest(
    *,
    messages: Sequence[Any],
    source: str,
    sensor_key: str | None = None,
    text_values: bool = False,
    atomic: bool = False,
    decoded: bool = False,
    device_key: DeviceKey | None = None,
    received_at: datetime | None = None,
) -> IngestResult:
    """Validate and store a batch of messages (raw bytes/str JSON, or decoded mappings).

    With `atomic=True` any invalid message raises `ApplicationError` whose `fields` map each bad index to its
    field errors, and nothing is stored; otherwise each bad message is kept as a `RejectedMessage`. With
    `decoded=True` every message must already be a mapping (REST items), never text to parse. A
    `device_key` limits the batch to the sensors that key may write and never registers new sensors.
    """
    batch = readings_validate(
        messages=messages, sensor_key=sensor_key, text_values=text_values, decoded=decoded, received_at=received_at
    )
    return readings_store(batch=batch, source=source, atomic=atomic, device_key=device_key)


def readings_validate(
    *,
    messages: Sequence[Any],
    sensor_key: str | None = None,
    text_values: bool = False,
    decoded: bool = False,
    received_at: datetime | None = None,
) -> ValidatedBatch:
    """The first half of `readings_ingest`: decode and validate every message, touching no database.

    A consumer may validate its next batch while `readings_store` writes the last one (stream source).
    """
    received_at = received_at or timezone.now()
    zone = naive_timezone()
    latest = received_at + timedelta(seconds=settings.SENSORS_MAX_FUTURE_SECONDS)
    limit = settings.SENSORS_MAX_MESSAGE_BYTES  # read once: each settings lookup costs microseconds
    valid: list[tuple[int, ReadingIn]] = []
    rejections: list[_Rejection] = []
    fast = _FastPath(sensor_key=sensor_key, text_values=text_values, zone=zone, latest=latest, limit=limit)
    for index, message in enumerate(messages):
        reading = fast.parse(message) if not decoded or type(message) is dict else None
        if reading is not None:
            valid.append((index, reading))
            continue
        try:
            if decoded and not isinstance(message, Mapping):
                raise ReadingInvalid({"non_field_errors": [f"Expected an object, got {_json_type(message)}."]})
            data = message_decode(message, limit=limit)
            valid.append(
                (
                    index,
                    reading_parse(
                        data,
                        sensor_key=sensor_key,
                        received_at=received_at,
                        text_values=text_values,
                        zone=zone,
                        latest=latest,
                    ),
                )
            )
        except ReadingInvalid as exc:
            rejections.append(_Rejection(index, message, exc.errors, exc.sensor_key or _guess_key(message)))
    return ValidatedBatch(messages=messages, received_at=received_at, valid=valid, rejections=rejections)


class _FastPath:
    """The common case of `message_decode` + `reading_parse` in a few microseconds less per message: a
    well-formed JSON message (or mapping) with a valid key, a finite number and an ISO timestamp. It accepts only
    what the full validation accepts, and gives the same reading; anything else returns None and goes the full
    way, which also explains what is wrong. Streams carry tens of thousands of messages a second: this is the
    difference between keeping up and not (bench/ingest.py)."""

    def __init__(
        self, *, sensor_key: str | None, text_values: bool, zone: ZoneInfo, latest: datetime, limit: int
    ) -> None:
        self.sensor_key = sensor_key
        self.text_values = text_values
        self.zone = zone
        self.latest = latest
        self.limit = limit
        self.keys: dict[str, bool] = {}  # sensor key -> valid as written

    def parse(self, message: Any) -> ReadingIn | None:
        try:
            if type(message) is bytes:
                if len(message) > self.limit:
                    return None
                data = _DECODER.decode(message.decode("utf-8"))
            elif type(message) is dict:
                data = message
            else:
                return None
            if type(data) is not dict:
                return None
            key = data.get("sensor", self.sensor_key)
            if type(key) is not str:
                return None
            valid = self.keys.get(key)
            if valid is None:
                valid = self.keys[key] = (
                    (self.sensor_key is None or key == self.sensor_key)
                    and key == key.strip()
                    and bool(_KEY_RE.match(key))
                )
            if not valid:
                return None
            raw: Any = data.get("value")
            kind = type(raw)
            if kind is float or kind is int or (kind is str and self.text_values):
                value = float(raw)
            else:
                return None
            if not math.isfinite(value):
                return None
            raw = data.get("timestamp")
            if type(raw) is not str:
                return None
            timestamp = datetime.fromisoformat(raw)
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=self.zone)
            timestamp = timestamp.astimezone(UTC)
            if timestamp > self.latest:
                return None
            return ReadingIn(key, timestamp, value)
        except (ValueError, OverflowError, RecursionError, ReadingInvalid):
            return None


def readings_store(
    *, batch: ValidatedBatch, source: str, atomic: bool = False, device_key: DeviceKey | None = None
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
                rejections.append(_Rejection(index, messages[index], {"sensor": [problem]}, reading.sensor_key))
            else:
                rows.append((sensors[reading.sensor_key], reading))

        if rejections and atomic:
            raise ApplicationError(
                f"{len(rejections)} of {len(messages)} readings are invalid; none was stored.",
                code="validation_error",
                fields={str(r.index): r.errors for r in sorted(rejections, key=lambda r: r.index)},
            )
        if rejections:
            _rejections_store(rejections, source=source, received_at=batch.received_at)

        stored = _readings_insert(rows)
        _latest_update(stored)
        if stored:
            transaction.on_commit(lambda: _hooks_run(stored))

    return IngestResult(
        received=len(messages),
        stored=len(stored),
        duplicates=len(rows) - len(stored),
        rejected=len(rejections),
        rejections=sorted((r.index, errors_reason(r.errors)) for r in rejections),
    )


def _guess_key(message: Any) -> str:
    if isinstance(message, Mapping):
        key = message.get("sensor")
        return key[:100] if isinstance(key, str) else ""
    return ""


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


def errors_reason(errors: dict[str, list[str]]) -> str:
    """Field errors as one line, the form a `RejectedMessage.reason` takes: `field: message; field: message`."""
    return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())


def _payload_text(message: Any) -> str:
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message[: RejectedMessage.PAYLOAD_LIMIT * 4]).decode("utf-8", errors="replace")
    if isinstance(message, str):
        return message
    try:
        return json.dumps(message, default=str)
    except (TypeError, ValueError):
        return repr(message)


def rejections_record(*, source: str, rejections: list[tuple[Any, str, str]]) -> None:
    """Keep messages refused before they reached `readings_ingest` (e.g. a CSV row with the wrong number of
    columns) as `RejectedMessage`s: (payload, reason, sensor key) each."""
    _rejections_store(
        [_Rejection(i, payload, {"row": [reason]}, key) for i, (payload, reason, key) in enumerate(rejections)],
        source=source,
        received_at=timezone.now(),
    )


def _rejections_store(rejections: list[_Rejection], *, source: str, received_at: datetime) -> None:
    objects = []
    for rejection in rejections:
        text = _payload_text(rejection.message)
        truncated = len(text) > RejectedMessage.PAYLOAD_LIMIT
        reason = errors_reason(rejection.errors)
        objects.append(
            RejectedMessage(
                source=source,
                payload=text[: RejectedMessage.PAYLOAD_LIMIT].replace("\x00", "\ufffd"),
                payload_truncated=truncated,
                reason=reason,
                sensor_key=rejection.sensor_key[:100].replace("\x00", "\ufffd"),
                received_at=received_at,
            )
        )
    RejectedMessage.objects.bulk_create(objects)


def _readings_insert(rows: list[tuple[_SensorRef, ReadingIn]]) -> list[StoredReading]:
    """Insert, skipping (sensor, timestamp) pairs already stored; return what was stored."""
    if not rows:
        return []
    table = connection.ops.quote_name(Reading._meta.db_table)
    if connection.vendor == "postgresql":
        # Django's foreign keys are checked at commit (DEFERRABLE INITIALLY DEFERRED): one lookup per reading,
        # a few milliseconds per thousand. Checked during the COPY instead, that work is done before the batch
        # takes its sensors' row locks (latest values), so concurrent writers wait on each other far less.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            returned = _insert_postgresql(table, rows)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # back to Django's default for the rest of the transaction
    else:
        returned = _insert_generic(table, rows)
    # `returned`: (sensor_id, timestamp, value) of the stored rows; None when all of them were stored.
    if returned is None:
        return [StoredReading(ref.id, ref.key, reading.timestamp, reading.value) for ref, reading in rows]
    keys = {ref.id: ref.key for ref, _ in rows}
    return [StoredReading(sensor_id, keys[sensor_id], ts, value) for sensor_id, ts, value in returned]


def _insert_postgresql(
    table: str, rows: list[tuple[_SensorRef, ReadingIn]]
) -> list[tuple[int, datetime, float]] | None:
    # Fast path: COPY straight into the table (raw COPY speed). A duplicate makes COPY fail as a whole; the
    # savepoint rolls that back and the batch goes the slower way: COPY into a session-local staging table, then
    # one INSERT ... SELECT ... ON CONFLICT DO NOTHING (see NOTES.md). After a batch with duplicates the next
    # batches of this process start on the slow path for a while (replays and re-imports come in runs).
    global _direct_copy_after
    if _direct_copy_after <= 0:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _copy_rows(cursor, table, rows)
            return None  # all stored
        except IntegrityError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                raise
            _direct_copy_after = 10
    else:
        _direct_copy_after -= 1
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS sensors_reading_incoming "
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
        cursor.execute("TRUNCATE sensors_reading_incoming")
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


def _latest_update(stored: list[StoredReading]) -> None:
    """Move each sensor's latest value forward, never back: only a greater timestamp replaces it."""
    newest: dict[int, StoredReading] = {}
    for reading in stored:
        current = newest.get(reading.sensor_id)
        if current is None or reading.timestamp > current.timestamp:
            newest[reading.sensor_id] = reading
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
        # One statement for any number of sensors (a batch may hold thousands).
        cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [ids])  # noqa: S608
        cursor.execute(
            f"UPDATE {table} AS s SET latest_timestamp = v.ts, latest_value = v.value "  # noqa: S608
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[]) AS v(id, ts, value) "
            "WHERE s.id = v.id AND (s.latest_timestamp IS NULL OR s.latest_timestamp < v.ts)",
            [ids, [r.timestamp for _, r in ordered], [r.value for _, r in ordered]],
        )


# --- hooks ------------------------------------------------------------------------------------------------------


@cache
def ingest_hooks() -> tuple[Callable[[list[StoredReading]], None], ...]:
    """The callables of `SENSORS_INGEST_HOOKS`, imported once per process."""
    return tuple(import_string(path) for path in settings.SENSORS_INGEST_HOOKS)


@receiver(setting_changed)
def _hooks_setting_changed(*, setting: str, **_: object) -> None:
    """A changed SENSORS_INGEST_HOOKS (settings overridden in a test) takes effect at once."""
    if setting == "SENSORS_INGEST_HOOKS":
        ingest_hooks.cache_clear()


def _hooks_run(stored: list[StoredReading]) -> None:
    for hook in ingest_hooks():
        try:
            hook(stored)
        except Exception:
            # A hook (live broadcast, detection hand-off) must never undo or stop ingestion.
            logger.exception("ingest hook failed", extra={"hook": getattr(hook, "__name__", repr(hook))})


def rejected_message_reprocess(*, message: RejectedMessage) -> IngestResult:
    """Run a rejected message through ingestion again (after a fix, e.g. its sensor was created).

    On success the rejected row is deleted; if it fails again its reason is updated and it stays.
    """
    with transaction.atomic():
        try:
            result = readings_ingest(
                messages=[message.payload], source=IngestSource.ADMIN, atomic=True, text_values=True
            )
        except ApplicationError as exc:
            errors = next(iter(exc.fields.values()), {}) if exc.fields else {"payload": [exc.detail]}
            message.reason = errors_reason(errors)
            message.save(update_fields=["reason"])
            return IngestResult(received=1, rejected=1)
        message.delete()
    return result
