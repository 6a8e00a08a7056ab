"""From what arrives to what validation reads: raw messages (bytes, text, mappings) as mappings, CSV text as rows,
and the one timestamp parser every path uses (message fields, CSV cells, HTTP source records, evaluation files).

Every problem is a `ReadingInvalid` naming the field and what is wrong, the form a rejection keeps.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

from django.conf import settings

if TYPE_CHECKING:
    from _csv import Reader  # what csv.reader() returns


class ReadingInvalid(Exception):
    """One message failed validation; `errors` maps each field to its problems."""

    def __init__(self, errors: dict[str, list[str]], *, sensor_key: str = "") -> None:
        super().__init__(errors_reason(errors))
        self.errors = errors
        self.sensor_key = sensor_key


class TimestampInvalid(ValueError):
    """A timestamp `timestamp_parse` cannot read; the message is the field error every path reports."""


def errors_reason(errors: dict[str, list[str]]) -> str:
    """Field errors as one line, the form a `RejectedMessage.reason` takes: `field: message; field: message`."""
    return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())


def json_type(value: Any) -> str:
    """How a message's value is named in an error: "an object", "a string", ..."""
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def naive_timezone() -> ZoneInfo:
    """The zone a timestamp without an offset is read in (`SENSORS_NAIVE_TIMEZONE`)."""
    return ZoneInfo(settings.SENSORS_NAIVE_TIMEZONE)


def timestamp_parse(raw: Any, *, zone: ZoneInfo) -> datetime:
    """The instant of a timestamp, aware and in UTC: ISO 8601 text (surrounding whitespace ignored) or a datetime;
    a naive one is read in `zone` (`naive_timezone()` for every ingestion path). Raises `TimestampInvalid`, also
    for text holding a NUL character.

    Whether a timestamp is required, and how far ahead it may be, is the caller's rule (`reading_parse`).
    """
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, str):
        if "\x00" in raw:  # Python's fromisoformat stops reading at a NUL: "12:00\x00+05:00" would be 12:00+05:00
            raise TimestampInvalid(f"{raw[:50]!r} holds a NUL character.")
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise TimestampInvalid(f"{raw[:50]!r} is not an ISO 8601 date and time.") from None
    else:
        raise TimestampInvalid(f"Must be an ISO 8601 string, not {json_type(raw)}.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise TimestampInvalid("The date is out of range.") from None


def json_size(value: Any, *, limit: int) -> int:
    """The size of `value` written as compact JSON in UTF-8, in bytes (escapes aside; a number as its digits), or
    a number over `limit` as soon as the count passes it: the work is bounded by `limit`, whatever the depth or
    length of `value` (no recursion: a mapping nested 100,000 deep is counted, not a `RecursionError`)."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            size += 2 + (len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass")))
        elif kind is list or kind is tuple:
            size += 2 + len(item)
            stack.extend(item)
        elif kind is int:
            size += 2 + item.bit_length() // 3  # at least its decimal digits, without writing them
        elif kind is dict or isinstance(item, Mapping):
            size += 2 + 2 * len(item)  # braces, a colon and a comma each
            stack.extend(item.keys())
            stack.extend(item.values())
        else:  # float, bool, None, a datetime of a bare MQTT number: short
            size += 24
        if size > limit:
            return size
    return size


def size_check(message: Any, *, limit: int) -> None:
    """`ReadingInvalid` when a decoded message (a mapping: a REST item, stream fields, a CSV row, an HTTP source
    record) is larger than `limit` bytes as JSON: the same rule raw messages meet in `message_decode`."""
    if json_size(message, limit=limit) > limit:
        raise ReadingInvalid({"payload": [f"The message is more than {limit} bytes as JSON; the limit is {limit}."]})


def message_decode(message: Any, *, limit: int | None = None) -> Mapping[str, Any]:
    """A raw message (bytes, str or an already decoded mapping) as a mapping, or `ReadingInvalid`.

    A message over `limit` bytes (default `SENSORS_MAX_MESSAGE_BYTES`) is refused: text unread, a mapping
    measured as JSON (`size_check`). Nesting too deep for the JSON parser and numbers too long for it are refused
    with their reasons, never raised.
    """
    limit = settings.SENSORS_MAX_MESSAGE_BYTES if limit is None else limit
    if type(message) is not bytes:  # bytes first: what Redis and MQTT deliver
        if isinstance(message, Mapping):
            size_check(message, limit=limit)
            return message
        if isinstance(message, bytearray | memoryview):
            message = bytes(message)
        elif isinstance(message, str):
            message = message.encode("utf-8", errors="surrogatepass")  # read as not UTF-8 below, with its reason
        else:
            raise ReadingInvalid({"payload": [f"Expected a JSON object, got {type(message).__name__}."]})
    if len(message) > limit:
        raise ReadingInvalid({"payload": [f"The message is {len(message)} bytes; the limit is {limit}."]})
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise ReadingInvalid({"payload": ["The message is not UTF-8 text."]}) from None
    try:
        data = JSON_DECODER.decode(text)
    except ReadingInvalid:
        raise
    except (ValueError, RecursionError) as exc:
        raise ReadingInvalid({"payload": [f"Not valid JSON: {exc}."]}) from None
    if type(data) is not dict:
        raise ReadingInvalid({"payload": [f"Expected a JSON object, got a JSON {type(data).__name__}."]})
    return data


def _reject_constant(name: str) -> NoReturn:
    raise ReadingInvalid({"value": [f"{name} is not a finite number."]})


# JSON as messages carry it: NaN and Infinity, which Python's json reads by default, are refused.
JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def csv_rows(reader: Reader) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, cells, "") of each row, or (line number, None, the parser's complaint) for a row the CSV
    parser cannot read (a field over the size limit, an unterminated quote): reading goes on after it.

    Shared by the CSV import and the CSV answers of HTTP sources."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, str(exc)
            continue
        yield reader.line_num, row, ""
