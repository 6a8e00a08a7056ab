import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from accounts.services import device_key_create
from common.exceptions import ApplicationError
from conftest import require_server
from sensors.ingest import message_decode, naive_timezone, reading_parse, readings_ingest, rejected_message_reprocess
from sensors.ingest.validation import FastPath
from sensors.models import Reading, RejectedMessage, Sensor, Transport
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db(transaction=False)

NOW = datetime(2024, 12, 1, 12, 30, tzinfo=UTC)


def msg(sensor="temperature", value=14, timestamp="2024-12-01 12:00:00", **extra) -> bytes:
    return json.dumps({"sensor": sensor, "value": value, "timestamp": timestamp, **extra}).encode()


def ingest(messages, **kwargs):
    kwargs.setdefault("transport", Transport.PUBSUB)
    kwargs.setdefault("received_at", NOW)
    return readings_ingest(messages=messages, **kwargs)


def test_old_contract_message_is_stored_and_sensor_registered():
    result = ingest([msg()])

    assert (result.stored, result.duplicates, result.rejected) == (1, 0, 0)
    reading = Reading.objects.get()
    assert reading.sensor.key == "temperature"
    assert reading.sensor.kind == "temperature"
    assert reading.timestamp == datetime(2024, 12, 1, 12, tzinfo=UTC)
    assert reading.value == 14.0


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


def test_duplicates_are_ignored_and_counted_within_and_across_batches():
    first = ingest([msg(value=1), msg(value=2), msg(timestamp="2024-12-01 12:01:00")])
    second = ingest([msg(value=3), msg(timestamp="2024-12-01 12:02:00")])

    assert (first.stored, first.duplicates) == (2, 1)
    assert (second.stored, second.duplicates) == (1, 1)
    # The first reading stored at an instant stays.
    assert Reading.objects.get(timestamp=datetime(2024, 12, 1, 12, tzinfo=UTC)).value == 1.0
    assert Reading.objects.count() == 3


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


def test_a_burst_of_malformed_messages_keeps_every_valid_one():
    good = [msg(timestamp=f"2024-12-01 11:{minute:02d}:00") for minute in range(60)]
    bad = [b"{", msg(value=float("nan")), msg(sensor=None), msg(timestamp="2100-01-01 00:00:00")] * 50
    messages = [m for pair in zip(good, bad[:60], strict=True) for m in pair] + bad[60:]

    result = ingest(messages)

    assert result.stored == 60
    assert result.rejected == 200
    assert RejectedMessage.objects.count() == 200
    assert result.received == result.stored + result.duplicates + result.rejected


def test_unknown_sensor_rejected_when_auto_registration_is_off(settings):
    settings.SENSORS_AUTO_REGISTER = False
    result = ingest([msg(sensor="nobody")])

    assert result.rejected == 1
    assert not Sensor.objects.filter(key="nobody").exists()
    assert RejectedMessage.objects.get().reason == "sensor: Unknown sensor 'nobody'."


def test_inactive_sensor_refuses_readings():
    SensorFactory(key="retired", active=False)
    result = ingest([msg(sensor="retired")])

    assert result.rejected == 1
    assert "inactive" in RejectedMessage.objects.get().reason


def test_latest_value_is_the_greatest_timestamp_not_the_last_to_arrive():
    ingest([msg(value=5, timestamp="2024-12-01 12:10:00")])
    ingest([msg(value=1, timestamp="2024-12-01 12:00:00"), msg(value=2, timestamp="2024-12-01 12:05:00")])

    sensor = Sensor.objects.get(key="temperature")
    assert sensor.latest_timestamp == datetime(2024, 12, 1, 12, 10, tzinfo=UTC)
    assert sensor.latest_value == 5.0

    ingest([msg(value=7, timestamp="2024-12-01 12:20:00"), msg(value=6, timestamp="2024-12-01 12:15:00")])
    sensor.refresh_from_db()
    assert (sensor.latest_timestamp.minute, sensor.latest_value) == (20, 7.0)


def test_atomic_batch_names_each_bad_index_and_stores_nothing():
    with pytest.raises(ApplicationError) as caught:
        ingest(
            [
                {"sensor": "temperature", "value": 1, "timestamp": "2024-12-01 12:00:00"},
                {"sensor": "temperature", "value": "x", "timestamp": "soon"},
                {"sensor": "temperature", "value": 2, "timestamp": "2024-12-01 12:01:00"},
                "not an object",
            ],
            atomic=True,
            decoded=True,
            transport=Transport.REST,
        )

    assert set(caught.value.fields) == {"1", "3"}
    assert set(caught.value.fields["1"]) == {"value", "timestamp"}
    assert Reading.objects.count() == 0
    assert RejectedMessage.objects.count() == 0
    assert not Sensor.objects.exists()


def test_device_key_writes_only_its_own_sensors():
    platform = PlatformFactory()
    mine = SensorFactory(key="mine", platform=platform)
    SensorFactory(key="theirs")
    key, _ = device_key_create(name="rig", platform=platform)

    result = ingest([msg(sensor="mine"), msg(sensor="theirs"), msg(sensor="brand-new")], device_key=key)

    assert result.stored == 1
    assert Reading.objects.get().sensor == mine
    reasons = sorted(RejectedMessage.objects.values_list("reason", flat=True))
    assert reasons == [
        "sensor: This device key may not write readings of sensor 'theirs'.",
        "sensor: Unknown sensor 'brand-new'.",
    ]


def test_hooks_get_only_the_stored_readings_after_commit(settings, django_capture_on_commit_callbacks):
    received = []
    settings.SENSORS_INGEST_HOOKS = ["sensors.tests.test_ingest.record_hook"]
    RECORDED.clear()
    from sensors.ingest.hooks import ingest_hooks

    ingest_hooks.cache_clear()
    try:
        ingest([msg(value=1)])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            ingest([msg(value=1), msg(value=2, timestamp="2024-12-01 12:01:00")])
        received = list(RECORDED)
    finally:
        ingest_hooks.cache_clear()

    assert len(callbacks) == 1
    assert [(r.sensor_key, r.timestamp.minute, r.value) for r in received] == [("temperature", 1, 2.0)]


RECORDED: list = []


def record_hook(stored):
    RECORDED.extend(stored)


def test_a_failing_hook_never_undoes_ingestion(settings, django_capture_on_commit_callbacks):
    settings.SENSORS_INGEST_HOOKS = ["sensors.tests.test_ingest.failing_hook"]
    from sensors.ingest.hooks import ingest_hooks

    ingest_hooks.cache_clear()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = ingest([msg()])
    finally:
        ingest_hooks.cache_clear()
    assert result.stored == 1
    assert Reading.objects.count() == 1


def failing_hook(stored):
    raise RuntimeError("listener broke")


def test_reprocess_ingests_a_fixed_message_and_keeps_a_still_broken_one(settings):
    settings.SENSORS_AUTO_REGISTER = False
    ingest([msg(sensor="later"), b"{broken"])
    later, broken = RejectedMessage.objects.order_by("payload")
    assert later.sensor_key == "later"
    SensorFactory(key="later")

    assert rejected_message_reprocess(message=later).stored == 1
    assert rejected_message_reprocess(message=broken).rejected == 1
    assert list(RejectedMessage.objects.all()) == [broken]
    assert Reading.objects.get().sensor.key == "later"


def test_large_batch_round_trip():
    base = datetime(2024, 11, 1, tzinfo=UTC)
    messages = [
        {"sensor": f"s{i % 7}", "value": i * 0.5, "timestamp": (base + timedelta(seconds=i)).isoformat()}
        for i in range(3000)
    ]
    result = ingest(messages, decoded=True)
    assert result.stored == 3000
    total = sum(Reading.objects.values_list("value", flat=True))
    assert total == pytest.approx(sum(i * 0.5 for i in range(3000)))
    assert connection.vendor in {"postgresql", "sqlite"}


def test_nul_characters_never_break_storing_a_rejection():
    result = ingest(
        [{"sensor": "a\x00b", "value": 1, "timestamp": "2024-12-01 12:00:00"}, '{"sensor": "x\u0000"}'],
        transport=Transport.CSV,
    )
    assert result.rejected == 2
    assert RejectedMessage.objects.filter(sensor_key="a\ufffdb").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_sensor_never_deadlock():
    """Two writers (the stream consumer's threads) store batches of the same sensor at the same moment: each
    batch's foreign-key checks and latest-value update must not wait on the other in a cycle."""
    if connection.vendor != "postgresql":  # row locks between concurrent transactions are PostgreSQL's
        require_server("PostgreSQL", RuntimeError("the tests run on SQLite"), hint="set DATABASE_URL to run this test")
    import threading

    from django.db import connections

    SensorFactory(key="shared")
    start = datetime(2024, 12, 1, tzinfo=UTC)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(offset: int) -> None:
        try:
            for round_ in range(8):
                messages = [
                    {"sensor": "shared", "value": 1.0, "timestamp": (start + timedelta(seconds=n)).isoformat()}
                    for n in range(offset + round_ * 4000, offset + round_ * 4000 + 2000)
                ]
                barrier.wait(timeout=30)
                readings_ingest(messages=messages, transport=Transport.STREAM, decoded=True)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 2000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert Reading.objects.count() == 32_000
    assert Sensor.objects.get(key="shared").latest_timestamp == start + timedelta(seconds=31_999)


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
