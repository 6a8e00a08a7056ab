"""Decoding: the one timestamp parser (every path reads timestamps with it) and the tolerant CSV row reader."""

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sensors.ingest import TimestampInvalid, csv_rows, message_decode, timestamp_parse
from sensors.ingest.decoding import ReadingInvalid

OSLO = ZoneInfo("Europe/Oslo")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-12-01T12:00:00Z", datetime(2024, 12, 1, 12, tzinfo=UTC)),
        (" 2024-12-01 12:00:00+02:00 ", datetime(2024, 12, 1, 10, tzinfo=UTC)),
        ("2024-12-01 12:00:00", datetime(2024, 12, 1, 11, tzinfo=UTC)),  # naive: read in the zone given
        ("2024-12-01", datetime(2024, 11, 30, 23, tzinfo=UTC)),
        (datetime(2024, 12, 1, 12, tzinfo=OSLO), datetime(2024, 12, 1, 11, tzinfo=UTC)),
    ],
)
def test_timestamps_are_iso_8601_and_come_back_in_utc(raw, expected):
    parsed = timestamp_parse(raw, zone=OSLO)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("yesterday", "'yesterday' is not an ISO 8601 date and time."),
        (" ", "' ' is not an ISO 8601 date and time."),
        (1733054400, "Must be an ISO 8601 string, not a number."),
        ([], "Must be an ISO 8601 string, not an array."),
        ("0001-01-01T00:00:00+01:00", "The date is out of range."),
    ],
)
def test_unreadable_timestamps_say_why(raw, message):
    with pytest.raises(TimestampInvalid, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"):
        timestamp_parse(raw, zone=UTC)


def test_json_constants_that_are_not_finite_numbers_are_refused(settings):
    with pytest.raises(ReadingInvalid, match="NaN is not a finite number"):
        message_decode(b'{"value": NaN}')


def test_csv_rows_go_on_after_a_row_the_parser_cannot_read():
    text = 'a,b\n"unterminated\n'
    rows = list(csv_rows(csv.reader(io.StringIO(text, newline=""), strict=True)))
    assert rows[0] == (1, ["a", "b"], "")
    assert rows[-1][1] is None
