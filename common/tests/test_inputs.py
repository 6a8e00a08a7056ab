"""The one time parser of the API (common/inputs.py) and its bounds; common/tests/test_api_inputs.py checks that
every time parameter uses it."""

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from common.inputs import InputInvalid, day_parse, instant_parse

# --- the parser -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-12-01T12:00:00Z", datetime(2024, 12, 1, 12, tzinfo=UTC)),
        ("2024-12-01T12:00:00+15:59", datetime(2024, 11, 30, 20, 1, tzinfo=UTC)),
        ("2024-12-01T12:00:00-15:59", datetime(2024, 12, 2, 3, 59, tzinfo=UTC)),
        ("2024-12-01 12:00:00", datetime(2024, 12, 1, 12, tzinfo=UTC)),  # naive: UTC
        ("2024-12-01", datetime(2024, 12, 1, tzinfo=UTC)),
        (" 2024-12-01T12:00:00.5Z ", datetime(2024, 12, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("0002-01-01T00:00:00Z", datetime(2, 1, 1, tzinfo=UTC)),
        ("9998-12-31T23:59:59Z", datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_instant_parse_reads_iso_8601_as_an_aware_utc_instant(text, expected):
    parsed = instant_parse(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_instant_parse_reads_a_naive_time_in_the_zone_given():
    assert instant_parse("2024-12-01T12:00", naive_zone=timezone(timedelta(hours=2))) == datetime(
        2024, 12, 1, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-01T00:00:00+23:00", "offset"),  # Python reads it; PostgreSQL cannot hold it
        ("2024-01-01T00:00:00-16:00", "offset"),
        ("0000-01-01T00:00:00Z", "ISO 8601"),
        ("0001-01-01T00:00:00Z", "year"),
        ("0001-01-01T00:00:00+01:00", "year"),  # written year 1 (year 0 in UTC)
        ("9999-12-31T23:00:00-10:00", "year"),  # written year 9999 (10000 in UTC)
        ("9999-01-01T00:00:00Z", "year"),
        ("10000-01-01T00:00:00Z", "ISO 8601"),
        ("-infinity", "ISO 8601"),
        ("infinity", "ISO 8601"),
        ("", "ISO 8601"),
        ("yesterday", "ISO 8601"),
        ("2024-01-01T00:00:00\x00", "Null characters"),  # Python itself would take it
        ("2024-01-01T00:00:00 01:00", "%2B"),  # an unencoded + read as a space
    ],
)
def test_instant_parse_refuses_what_a_layer_cannot_hold(text, message):
    with pytest.raises(InputInvalid, match=message.replace("+", r"\+")):
        instant_parse(text)


def test_day_parse_has_the_same_year_bounds():
    assert day_parse("2024-06-01") == date(2024, 6, 1)
    assert day_parse("0002-01-01") == date(2, 1, 1)
    for text in ["0001-12-31", "9999-01-01", "10000-01-01", "-infinity", "2024-06-01T00:00:00", "2024-13-01"]:
        with pytest.raises(InputInvalid):
            day_parse(text)


# --- the parameters' rule -----------------------------------------------------------------------------------------


def test_params_refusal_names_each_unstorable_parameter(rf):
    from common.inputs import params_refusal

    response = params_refusal(rf.get("/api/v1/sensors/", {"search": "a\x00", "platform": "p1", "x\x00": "1"}))
    assert response.status_code == 400
    assert json.loads(response.content) == {
        "error": "validation_error",
        "detail": "A parameter holds a NUL character or a lone surrogate: 'search', 'x\\x00'.",
        "fields": {"search": ["Null characters are not allowed."], "x\x00": ["Null characters are not allowed."]},
    }
    assert params_refusal(rf.get("/api/v1/sensors/", {"search": "a", "platform": "p1"})) is None


def test_params_refusal_leaves_a_query_django_refuses_to_the_view(rf, settings):
    # More fields than Django reads: the view meets the same refusal and answers it with the API's error shape
    # (common/exceptions.py), which a middleware cannot (and Django's DEBUG page fails on it).
    from common.inputs import params_refusal

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    assert params_refusal(rf.get("/api/v1/readings/latest/?" + "&".join(["sensor=a"] * 11))) is None
