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

from django.conf import settings
from django.utils import timezone

from common.text import text_is_storable
from sensors.ingest.decoding import (
    JSON_DECODER,
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
    for index, message in enumerate(messages):
        reading = fast.parse(message) if not decoded or type(message) is dict else None
        if reading is not None:
            valid.append((index, reading))
            continue
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


class FastPath:
    """The common case of `message_decode` + `reading_parse` in a few microseconds less per message: a
    well-formed JSON message (or mapping) with a valid key, a finite number and an ISO timestamp. It accepts only
    what the full validation accepts, and gives the same reading; anything else returns None and goes the full
    way, which also explains what is wrong. Streams carry tens of thousands of messages a second: this is the
    difference between keeping up and not (bench/ingest.py).

    Its timestamp step is `timestamp_parse` inlined for the common case (text, no surrounding whitespace): the
    same instant, or None (tests prove the two agree)."""

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
                data = JSON_DECODER.decode(message.decode("utf-8"))
            elif type(message) is dict:
                if json_size(message, limit=self.limit) > self.limit:
                    return None
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
            if type(raw) is not str or "\x00" in raw:  # as `timestamp_parse`: fromisoformat stops at a NUL
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
