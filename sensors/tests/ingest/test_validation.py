"""Validation: field errors per message, timestamps in the configured zone, the fast path agreeing with the full one."""

from datetime import UTC, datetime, timedelta

import pytest

from sensors.ingest import message_decode, naive_timezone, reading_parse
from sensors.ingest.validation import FastPath
from sensors.models import Reading, RejectedMessage
from sensors.tests.ingest.messages import ingest, msg

pytestmark = pytest.mark.django_db(transaction=False)


def test_timestamps_with_offsets_and_naive_ones_in_the_configured_zone(settings):
    settings.SENSORS_NAIVE_TIMEZONE = "Europe/Oslo"
    ingest(
        [
            msg(timestamp="2024-12-01T12:00:00+02:00"),
            msg(timestamp="2024-12-01T11:00:00Z"),
            msg(timestamp="2024-06-01 12:00:00"),  # naive, Oslo summer time: 10:00 UTC
            msg(timestamp="2024-12-01T09:00:00.250"),  # naive, Oslo winter time: 08:00:00.25 UTC
        ]
    )
    stamps = sorted(Reading.objects.values_list("timestamp", flat=True))
    assert stamps == [
        datetime(2024, 6, 1, 10, tzinfo=UTC),
        datetime(2024, 12, 1, 8, 0, 0, 250000, tzinfo=UTC),
        datetime(2024, 12, 1, 10, tzinfo=UTC),
        datetime(2024, 12, 1, 11, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (b"{not json", "payload"),
        (b"\xff\xfe", "payload"),
        (b"[1, 2]", "payload"),
        (b'"text"', "payload"),
        (b'{"sensor": "temperature", "value": NaN, "timestamp": "2024-12-01 12:00:00"}', "value"),
        (b'{"sensor": "temperature", "value": Infinity, "timestamp": "2024-12-01 12:00:00"}', "value"),
        (b'{"sensor": "temperature", "value": 1e999, "timestamp": "2024-12-01 12:00:00"}', "value"),
        (msg(value="14"), "value"),
        (msg(value=True), "value"),
        (msg(value=[1]), "value"),
        (msg(value=None), "value"),
        (b'{"sensor": "temperature", "timestamp": "2024-12-01 12:00:00"}', "value"),
        (msg(sensor=7), "sensor"),
        (msg(sensor=""), "sensor"),
        (msg(sensor="bad key/with slash"), "sensor"),
        (b'{"value": 1, "timestamp": "2024-12-01 12:00:00"}', "sensor"),
        (msg(timestamp="yesterday"), "timestamp"),
        (msg(timestamp=1733054400), "timestamp"),
        (msg(timestamp="2024-13-01 00:00:00"), "timestamp"),
        (msg(timestamp="2024-12-01 12:35:01"), "timestamp"),  # more than 300 s after NOW
        (msg(timestamp=None), "timestamp"),
        (b"x" * 70_000, "payload"),
    ],
)
def test_malformed_messages_are_rejected_with_their_reason(message, field):
    result = ingest([message, msg()])

    assert (result.stored, result.rejected) == (1, 1)
    rejected = RejectedMessage.objects.get()
    assert rejected.reason.startswith(f"{field}:")
    assert rejected.transport == "pubsub"
    assert len(rejected.payload) <= RejectedMessage.PAYLOAD_LIMIT
    assert rejected.payload_truncated == (len(message) > RejectedMessage.PAYLOAD_LIMIT)


@pytest.mark.parametrize(
    ("message", "options"),
    [
        (b'{"sensor": "temperature", "value": 14, "timestamp": "2024-12-01 12:00:00"}', {}),
        (b'{"sensor": "t.1:a-b_c", "value": -0.5, "timestamp": "2024-12-01T12:00:00.123456+02:00"}', {}),
        (b'{"sensor": "t", "value": 1e300, "timestamp": "2024-12-01T12:00:00Z"}', {}),
        (b'{"value": 3, "timestamp": "2024-03-31 02:30:00"}', {"sensor_key": "t"}),
        (b'{"sensor": "t", "value": " 2.5 ", "timestamp": "2024-12-01 12:00:00"}', {"text_values": True}),
        ({"sensor": "t", "value": 7, "timestamp": "2024-10-27 02:30:00"}, {}),
    ],
)
def test_the_fast_validation_path_gives_what_the_full_one_gives(message, options, settings):
    settings.SENSORS_NAIVE_TIMEZONE = "Europe/Oslo"  # naive times, with a DST gap and a repeated hour above
    received = datetime(2025, 1, 1, tzinfo=UTC)
    zone = naive_timezone()
    latest = received + timedelta(seconds=300)
    fast = FastPath(
        sensor_key=options.get("sensor_key"),
        text_values=options.get("text_values", False),
        zone=zone,
        latest=latest,
        limit=65536,
    ).parse(message)
    full = reading_parse(message_decode(message), received_at=received, zone=zone, **options)
    assert fast is not None
    assert fast == full
    assert fast.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("message", "options"),
    [
        (b'{"sensor": "t", "value": NaN, "timestamp": "2024-12-01 12:00:00"}', {}),
        (b'{"sensor": "t", "value": true, "timestamp": "2024-12-01 12:00:00"}', {}),
        (b'{"sensor": "t", "value": "1", "timestamp": "2024-12-01 12:00:00"}', {}),
        (b'{"sensor": " t", "value": 1, "timestamp": "2024-12-01 12:00:00"}', {}),
        (b'{"sensor": "t", "value": 1, "timestamp": "2999-01-01 00:00:00"}', {}),
        (b'{"sensor": "t", "value": 1, "timestamp": " 2024-12-01 12:00:00"}', {}),
        (b'{"sensor": "u", "value": 1, "timestamp": "2024-12-01 12:00:00"}', {"sensor_key": "t"}),
        (b'{"sensor": "t", "value": 1e999, "timestamp": "2024-12-01 12:00:00"}', {}),
        (b'["t", 1]', {}),
        (b"\xff", {}),
        ("a str is left to the full path", {}),
    ],
)
def test_the_fast_validation_path_leaves_everything_else_to_the_full_one(message, options):
    received = datetime(2025, 1, 1, tzinfo=UTC)
    fast = FastPath(
        sensor_key=options.get("sensor_key"),
        text_values=False,
        zone=naive_timezone(),
        latest=received + timedelta(seconds=300),
        limit=65536,
    )
    assert fast.parse(message) is None
