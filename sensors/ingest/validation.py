"""Validation: decoded messages become `ReadingIn`s or field errors, touching no database.

The rules: a message of at most `SENSORS_MAX_MESSAGE_BYTES` (raw, or a mapping measured as JSON); a sensor key as
`SENSOR_KEY_PATTERN` allows (or the one the transport supplies), one holding NUL or a surrogate refused with that
reason (`common.text`); a finite float value;
an ISO 8601 timestamp (`timestamp_parse`), naive ones read in `SENSORS_NAIVE_TIMEZONE`, none more than
`SENSORS_MAX_FUTURE_SECONDS` ahead of the receive time. Whether the sensor exists, is active and may be written
by the caller's device key is decided when storing (`storage`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from django.conf import settings
from django.utils import timezone

from common.text import text_is_storable
from sensors.ingest.decoding import (
    ReadingInvalid,
    TimestampInvalid,
    json_size,
    json_type,
    message_decode,
    naive_timezone,
    timestamp_parse,
)
from sensors.ingest.rejections import Rejection, guess_key
from sensors.models import SENSOR_KEY_PATTERN

UNSET = msgspec.UNSET

_KEY_RE = re.compile(SENSOR_KEY_PATTERN)
UNSTORABLE_KEY = "The sensor key holds a NUL character or a lone surrogate (U+D800 to U+DFFF), which no text can store."


class ReadingIn(NamedTuple):
    """A validated reading, not yet tied to a stored sensor."""

    sensor_key: str
    timestamp: datetime
    value: float


@dataclass
class ValidatedBatch:
    """Messages after validation, before any database work: what `readings_store` writes."""

    messages: Sequence[Any]
    received_at: datetime
    valid: list[tuple[int, ReadingIn]]
    rejections: list[Rejection]


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
        errors["sensor"] = [f"Must be a string, not {json_type(key)}."]
        return None
    if not text_is_storable(key):
        errors["sensor"] = [UNSTORABLE_KEY]
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
        errors["value"] = [f"Must be a number, not {json_type(raw)}."]
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
    try:
        parsed = timestamp_parse(raw, zone=zone)
    except TimestampInvalid as exc:
        errors["timestamp"] = [str(exc)]
        return None
    if parsed > latest:
        errors["timestamp"] = [
            f"{parsed.isoformat()} is more than {settings.SENSORS_MAX_FUTURE_SECONDS} s in the future."
        ]
        return None
    return parsed


def readings_validate(
    *,
    messages: Sequence[Any],
    sensor_key: str | None = None,
    text_values: bool = False,
    decoded: bool = False,
    received_at: datetime | None = None,
) -> ValidatedBatch:
    """The first half of `readings_ingest`: decode and validate every message, touching no database.

    A consumer may validate its next batch while `readings_store` writes the last one (stream transport).
    """
    received_at = received_at or timezone.now()
    zone = naive_timezone()
    latest = received_at + timedelta(seconds=settings.SENSORS_MAX_FUTURE_SECONDS)
    limit = settings.SENSORS_MAX_MESSAGE_BYTES  # read once: each settings lookup costs microseconds
    valid: list[tuple[int, ReadingIn]] = []
    rejections: list[Rejection] = []
    fast = FastPath(sensor_key=sensor_key, text_values=text_values, zone=zone, latest=latest, limit=limit)
    # The fast path reads the batch first (raw JSON decoded and checked in C); what it leaves (None) goes the full
    # way, which accepts exactly what the fast path would have and explains every rejection.
    if decoded:  # REST items: mappings only, never text to parse
        readings = [fast.parse_mapping(message) if type(message) is dict else None for message in messages]
    else:
        readings = fast.parse_all(messages)
    for index, reading in enumerate(readings):
        if reading is not None:
            valid.append((index, reading))
            continue
        message = messages[index]
        try:
            if decoded and not isinstance(message, Mapping):
                raise ReadingInvalid({"non_field_errors": [f"Expected an object, got {json_type(message)}."]})
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
            rejections.append(Rejection(index, message, exc.errors, exc.sensor_key or guess_key(message)))
    return ValidatedBatch(messages=messages, received_at=received_at, valid=valid, rejections=rejections)


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON message as the fast path takes it: these three fields and no other (any other field, however
    nested or long, is left to Python's json, whose limits decide what the full path refuses), a number value."""

    sensor: str | msgspec.UnsetType = msgspec.UNSET
    value: int | float | None = None
    timestamp: str = ""


class _TextMessage(_Message, forbid_unknown_fields=True):
    """The same where values may be written as text (stream fields, `text_values`)."""

    value: int | float | str | None = None  # type: ignore[assignment]  # wider than the base: text too


# Integers stay integers (`-0` is 0, as Python's json reads it, not -0.0); NaN and Infinity are not JSON here either.
_DECODE = msgspec.json.Decoder(_Message).decode
_DECODE_TEXT = msgspec.json.Decoder(_TextMessage).decode


class FastPath:
    """The common case of `message_decode` + `reading_parse` at a fraction of the cost: a well-formed JSON
    message (or mapping) with a valid key, a finite number and an ISO timestamp. It accepts only what the full
    validation accepts, and gives the same reading; anything else returns None and goes the full way, which also
    explains what is wrong. Streams carry tens of thousands of messages a second: this is the difference between
    keeping up and not (bench/ingest.py, docs/benchmarks.md).

    Raw JSON (bytes) is decoded and type-checked in C by msgspec into a struct of exactly the three fields:
    msgspec refuses everything Python's json refuses for such a message (invalid UTF-8, lone surrogates, control
    characters in strings, NaN/Infinity, numbers out of the float range); any other field, a missing one or a
    wrong type sends the message the full way. Mappings (REST items, stream entries written as fields) take the
    same checks in Python.

    Its timestamp step is `timestamp_parse` inlined for the common case (text, no surrounding whitespace): the
    same instant, or None (tests prove the two agree, sensors/tests/ingest/test_fast_path.py)."""

    def __init__(
        self, *, sensor_key: str | None, text_values: bool, zone: ZoneInfo, latest: datetime, limit: int
    ) -> None:
        self.sensor_key = sensor_key
        self.text_values = text_values
        self.zone = zone
        self.latest = latest
        self.limit = limit
        self.keys: dict[str, bool] = {}  # sensor key -> valid as written

    def _key_valid(self, key: str) -> bool:
        valid = self.keys.get(key)
        if valid is None:
            valid = self.keys[key] = (
                (self.sensor_key is None or key == self.sensor_key) and key == key.strip() and bool(_KEY_RE.match(key))
            )
        return valid

    def parse(self, message: Any) -> ReadingIn | None:
        """One message (raw JSON bytes or a mapping) as its reading, or None: the full path decides."""
        return self.parse_all([message])[0]

    def parse_all(self, messages: Sequence[Any]) -> list[ReadingIn | None]:
        """Each message's reading, or None where the full path must decide. One loop for the batch, its
        lookups bound once: this runs once per reading at the stream's full rate."""
        decode = _DECODE_TEXT if self.text_values else _DECODE
        default_key = self.sensor_key
        limit, zone, latest = self.limit, self.zone, self.latest
        keys = self.keys
        key_valid = self._key_valid
        fromisoformat = datetime.fromisoformat
        isfinite = math.isfinite
        # Naive timestamps read in UTC need no conversion (the same instants as through the zone, without
        # astimezone's cost per reading), nor do those written in UTC.
        naive_utc = getattr(zone, "key", None) == "UTC"
        new = tuple.__new__  # a ReadingIn made through its generated __new__ costs twice as much
        out: list[ReadingIn | None] = []
        append = out.append
        for message in messages:
            if type(message) is not bytes:
                append(self.parse_mapping(message) if type(message) is dict else None)
                continue
            if len(message) > limit:
                append(None)
                continue
            try:
                data = decode(message)
                key = data.sensor
                if key is UNSET:
                    if default_key is None:
                        append(None)
                        continue
                    key = default_key
                valid = keys.get(key)
                if valid is None:
                    valid = key_valid(key)
                raw = data.value
                if not valid or raw is None:  # a bool or, without `text_values`, text never decodes
                    append(None)
                    continue
                value = float(raw)  # an int past the float range: OverflowError; text not a number: ValueError
                if not isfinite(value):
                    append(None)
                    continue
                stamp = data.timestamp
                if "\x00" in stamp:  # as `timestamp_parse`: fromisoformat stops reading at a NUL
                    append(None)
                    continue
                timestamp = fromisoformat(stamp)
                if timestamp.tzinfo is None:
                    timestamp = timestamp.replace(tzinfo=UTC if naive_utc else zone)
                if timestamp.tzinfo is not UTC:
                    timestamp = timestamp.astimezone(UTC)
                if timestamp > latest:
                    append(None)
                    continue
                append(new(ReadingIn, (key, timestamp, value)))
            except (msgspec.DecodeError, ValueError, OverflowError):
                append(None)
        return out

    def parse_mapping(self, data: dict[str, Any]) -> ReadingIn | None:
        """A decoded message (a REST item, stream fields) as its reading, or None: the full path decides."""
        try:
            if json_size(data, limit=self.limit) > self.limit:
                return None
            key = data.get("sensor", self.sensor_key)
            if type(key) is not str or not self._key_valid(key):
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
            if type(raw) is not str or "\x00" in raw:  # as `timestamp_parse`: fromisoformat stops at a NUL
                return None
            timestamp = datetime.fromisoformat(raw)
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=self.zone)
            timestamp = timestamp.astimezone(UTC)
            if timestamp > self.latest:
                return None
            return ReadingIn(key, timestamp, value)
        except (ValueError, OverflowError):
            return None
