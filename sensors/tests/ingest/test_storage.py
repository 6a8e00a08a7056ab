"""Storage: duplicates, sensors resolved and checked, latest values, large and concurrent batches."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from conftest import require_server
from sensors.ingest import readings_ingest
from sensors.models import Reading, RejectedMessage, Sensor, Transport
from sensors.services.device_keys import device_key_create
from sensors.tests.factories import PlatformFactory, SensorFactory
from sensors.tests.ingest.messages import ingest, msg

pytestmark = pytest.mark.django_db(transaction=False)


def test_duplicates_are_ignored_and_counted_within_and_across_batches():
    first = ingest([msg(value=1), msg(value=2), msg(timestamp="2024-12-01 12:01:00")])
    second = ingest([msg(value=3), msg(timestamp="2024-12-01 12:02:00")])

    assert (first.stored, first.duplicates) == (2, 1)
    assert (second.stored, second.duplicates) == (1, 1)
    # The first reading stored at an instant stays.
    assert Reading.objects.get(timestamp=datetime(2024, 12, 1, 12, tzinfo=UTC)).value == 1.0
    assert Reading.objects.count() == 3


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


def test_latest_values_of_several_sensors_interleaved_in_one_batch():
    ingest(
        [
            msg(sensor="b", value=1, timestamp="2024-12-01 12:09:00"),
            msg(sensor="a", value=2, timestamp="2024-12-01 12:30:00"),
            msg(sensor="c", value=3, timestamp="2024-12-01 12:00:00"),
            msg(sensor="b", value=4, timestamp="2024-12-01 12:10:00"),
            msg(sensor="a", value=5, timestamp="2024-12-01 12:20:00"),
        ]
    )

    latest = {s.key: (s.latest_timestamp.minute, s.latest_value) for s in Sensor.objects.all()}
    assert latest == {"a": (30, 2.0), "b": (10, 4.0), "c": (0, 3.0)}


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
