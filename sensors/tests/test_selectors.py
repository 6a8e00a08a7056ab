from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync

from common.exceptions import ApplicationError
from sensors import selectors
from sensors.ingest import readings_ingest
from sensors.models import Transport
from sensors.selectors import (
    MAX_BUCKETS,
    installation_list,
    reading_chunks,
    reading_chunks_async,
    reading_list,
    readings_bucketed,
    readings_latest,
    readings_recent,
    sensor_list,
)
from sensors.tests.factories import InstallationFactory, PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

OSLO = ZoneInfo("Europe/Oslo")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def store(sensor, points) -> None:
    """Readings through the ingestion service, so latest values are kept as in production."""
    readings_ingest(
        messages=[{"sensor": sensor.key, "timestamp": ts.isoformat(), "value": value} for ts, value in points],
        transport=Transport.REST,
        atomic=True,
        decoded=True,
    )


@pytest.fixture
def sensor():
    return SensorFactory(key="pump-1.temp")


# --- raw readings -----------------------------------------------------------------------------------------------


def test_reading_list_is_start_inclusive_end_exclusive_and_ordered(sensor):
    other = SensorFactory()
    store(sensor, [(at(2024, 1, 1, 0, m), m) for m in (3, 0, 2, 1)])
    store(other, [(at(2024, 1, 1, 0, 1), 99)])

    rows = list(reading_list(sensor=sensor, start=at(2024, 1, 1, 0, 1), end=at(2024, 1, 1, 0, 3)))

    assert rows == [
        {"timestamp": at(2024, 1, 1, 0, 1), "value": 1.0},
        {"timestamp": at(2024, 1, 1, 0, 2), "value": 2.0},
    ]


def test_reading_chunks_walk_the_range_by_keyset_once(sensor, django_assert_num_queries):
    store(sensor, [(at(2024, 1, 1) + timedelta(seconds=s), s) for s in range(10)])

    with django_assert_num_queries(3):  # 4 + 4 + 2 rows: the short chunk ends the walk
        chunks = list(reading_chunks(sensor=sensor, size=4))

    assert [len(chunk) for chunk in chunks] == [4, 4, 2]
    assert [value for chunk in chunks for _, value in chunk] == [float(s) for s in range(10)]


def test_readings_recent_are_the_last_by_timestamp_oldest_first_in_one_query(sensor, django_assert_num_queries):
    other = SensorFactory()
    store(sensor, [(at(2024, 1, 1, 0, m), m) for m in (4, 0, 3, 1, 2)])  # arrival order is not time order
    store(other, [(at(2024, 1, 1, 1), 99)])

    with django_assert_num_queries(1):
        rows = readings_recent(sensor=sensor, limit=3)

    assert rows == [(at(2024, 1, 1, 0, m), float(m)) for m in (2, 3, 4)]
    assert readings_recent(sensor=sensor, limit=100) == [(at(2024, 1, 1, 0, m), float(m)) for m in range(5)]
    assert readings_recent(sensor=sensor, limit=0) == []


def test_reading_chunks_async_yields_the_same_chunks(sensor):
    store(sensor, [(at(2024, 1, 1) + timedelta(seconds=s), s) for s in range(9)])

    async def collect():
        return [chunk async for chunk in reading_chunks_async(sensor=sensor, start=at(2024, 1, 1, 0, 0, 1), size=3)]

    chunks = async_to_sync(collect)()
    assert [[value for _, value in chunk] for chunk in chunks] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0]]


# --- bucketed readings ------------------------------------------------------------------------------------------

# 5-minute buckets of these points: [00:00, 00:05) holds 1, 2, 3; [00:05, 00:10) holds 10, 20; 00:20 holds 5.
POINTS = [
    (at(2024, 12, 1, 0, 0, 0), 1),
    (at(2024, 12, 1, 0, 1, 0), 2),
    (datetime(2024, 12, 1, 0, 4, 59, 500000, tzinfo=UTC), 3),
    (at(2024, 12, 1, 0, 5, 0), 10),
    (at(2024, 12, 1, 0, 9, 0), 20),
    (at(2024, 12, 1, 0, 20, 0), 5),
]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("avg", [2.0, 15.0, 5.0]),
        ("min", [1.0, 10.0, 5.0]),
        ("max", [3.0, 20.0, 5.0]),
        ("sum", [6.0, 30.0, 5.0]),
        ("count", [3, 2, 1]),
    ],
)
def test_five_minute_buckets_for_every_aggregate(sensor, agg, expected, django_assert_num_queries):
    store(sensor, POINTS)

    with django_assert_num_queries(1):
        buckets = readings_bucketed(sensor=sensor, bucket="5m", agg=agg, start=at(2024, 12, 1), end=at(2024, 12, 2))

    assert [b.start for b in buckets] == [at(2024, 12, 1, 0, 0), at(2024, 12, 1, 0, 5), at(2024, 12, 1, 0, 20)]
    assert [b.value for b in buckets] == pytest.approx(expected)
    if agg == "count":
        assert all(isinstance(b.value, int) for b in buckets)


def test_range_bounds_apply_before_bucketing(sensor):
    store(sensor, POINTS)

    buckets = readings_bucketed(
        sensor=sensor, bucket="5m", agg="sum", start=at(2024, 12, 1, 0, 1), end=at(2024, 12, 1, 0, 9)
    )

    assert [(b.start, b.value) for b in buckets] == [(at(2024, 12, 1, 0, 0), 5.0), (at(2024, 12, 1, 0, 5), 10.0)]


def test_sub_day_buckets_align_to_utc_and_are_shown_in_the_zone(sensor):
    store(sensor, [(at(2024, 12, 1, 10, 10), 1), (at(2024, 12, 1, 10, 50), 3), (at(2024, 12, 1, 11, 10), 7)])

    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: an hourly bucket starts at half past the local hour
    buckets = readings_bucketed(sensor=sensor, bucket="1h", tz=kolkata, start=at(2024, 12, 1), end=at(2024, 12, 2))

    assert [(b.start.isoformat(), b.value) for b in buckets] == [
        ("2024-12-01T15:30:00+05:30", 2.0),
        ("2024-12-01T16:30:00+05:30", 7.0),
    ]


def test_twelve_hour_buckets(sensor):
    store(sensor, [(at(2024, 12, 1, 11, 59, 59), 1), (at(2024, 12, 1, 12), 2), (at(2024, 12, 2, 0), 4)])

    buckets = readings_bucketed(sensor=sensor, bucket="12h", agg="count", start=at(2024, 12, 1), end=at(2024, 12, 3))

    assert [(b.start, b.value) for b in buckets] == [
        (at(2024, 12, 1, 0), 1),
        (at(2024, 12, 1, 12), 1),
        (at(2024, 12, 2, 0), 1),
    ]


@pytest.mark.parametrize(
    ("points", "expected", "hours"),
    [
        (
            # Spring forward in Oslo: 2024-03-31 runs from 2024-03-30T23:00Z to 2024-03-31T22:00Z, 23 hours.
            [
                (at(2024, 3, 30, 22, 59, 59), 1),
                (at(2024, 3, 30, 23, 0, 0), 2),
                (at(2024, 3, 31, 21, 59, 59), 3),
                (at(2024, 3, 31, 22, 0, 0), 4),
            ],
            [
                ("2024-03-30T00:00:00+01:00", 1),
                ("2024-03-31T00:00:00+01:00", 2),
                ("2024-04-01T00:00:00+02:00", 1),
            ],
            23,
        ),
        (
            # Fall back: 2024-10-27 runs from 2024-10-26T22:00Z to 2024-10-27T23:00Z, 25 hours.
            [
                (at(2024, 10, 26, 21, 59, 59), 1),
                (at(2024, 10, 26, 22, 0, 0), 2),
                (at(2024, 10, 27, 22, 59, 59), 3),
                (at(2024, 10, 27, 23, 0, 0), 4),
            ],
            [
                ("2024-10-26T00:00:00+02:00", 1),
                ("2024-10-27T00:00:00+02:00", 2),
                ("2024-10-28T00:00:00+01:00", 1),
            ],
            25,
        ),
    ],
    ids=["spring-23h", "autumn-25h"],
)
def test_daily_buckets_start_at_local_midnight_on_daylight_saving_days(sensor, points, expected, hours):
    store(sensor, points)
    start, end = points[0][0] - timedelta(days=1), points[-1][0] + timedelta(days=1)

    buckets = readings_bucketed(sensor=sensor, bucket="1d", agg="count", tz=OSLO, start=start, end=end)

    assert [(b.start.isoformat(), b.value) for b in buckets] == expected
    # Same-zone datetimes subtract as wall clocks in Python: compare the instants.
    assert buckets[2].start.astimezone(UTC) - buckets[1].start.astimezone(UTC) == timedelta(hours=hours)
    sums = readings_bucketed(sensor=sensor, bucket="1d", agg="sum", tz=OSLO, start=start, end=end)
    assert [b.value for b in sums] == [1.0, 5.0, 4.0]


def test_daily_buckets_in_utc_by_default(sensor):
    store(sensor, [(at(2024, 3, 30, 23, 30), 1), (at(2024, 3, 31, 0, 30), 2)])

    buckets = readings_bucketed(sensor=sensor, bucket="1d", start=at(2024, 3, 30), end=at(2024, 4, 1))

    assert [(b.start.isoformat(), b.value) for b in buckets] == [
        ("2024-03-30T00:00:00+00:00", 1.0),
        ("2024-03-31T00:00:00+00:00", 2.0),
    ]


def test_more_than_the_bucket_limit_is_refused_before_querying(sensor, django_assert_num_queries):
    start = at(2024, 1, 1)
    at_limit = start + timedelta(minutes=MAX_BUCKETS - 1)  # MAX_BUCKETS one-minute buckets at most
    assert readings_bucketed(sensor=sensor, bucket="1m", start=start, end=at_limit) == []

    with django_assert_num_queries(0), pytest.raises(ApplicationError) as error:
        readings_bucketed(sensor=sensor, bucket="1m", start=start, end=at_limit + timedelta(minutes=1))
    assert error.value.code == "too_many_buckets"
    assert "bucket" in error.value.fields


def test_an_open_range_is_sized_from_the_sensors_own_readings(sensor, monkeypatch):
    store(sensor, [(at(2024, 1, 1), 1), (at(2024, 1, 1, 0, 9), 2)])
    sensor.refresh_from_db()  # its latest reading closes the range

    assert [b.value for b in readings_bucketed(sensor=sensor, bucket="5m")] == [1.0, 2.0]
    monkeypatch.setattr(selectors, "MAX_BUCKETS", 1)  # ten minutes of readings hold two 5-minute buckets
    with pytest.raises(ApplicationError):
        readings_bucketed(sensor=sensor, bucket="5m")


def test_a_sensor_without_readings_has_no_buckets(sensor):
    assert readings_bucketed(sensor=sensor, bucket="1d", tz=OSLO) == []


@pytest.mark.parametrize(("bucket", "agg"), [("7m", "avg"), ("5m", "median")])
def test_unknown_bucket_or_aggregate_is_an_application_error(sensor, bucket, agg):
    with pytest.raises(ApplicationError):
        readings_bucketed(sensor=sensor, bucket=bucket, agg=agg, start=at(2024, 1, 1), end=at(2024, 1, 2))


# --- latest and catalogue ---------------------------------------------------------------------------------------


def test_readings_latest_of_many_sensors_in_one_query(django_assert_num_queries):
    platform = PlatformFactory(slug="north")
    a, b, c = (SensorFactory(key=key, platform=platform) for key in ("a", "b", "c"))
    elsewhere = SensorFactory(key="d")
    store(a, [(at(2024, 1, 1, 1), 5), (at(2024, 1, 1, 0), 4)])  # the greatest timestamp wins, not the last sent
    store(b, [(at(2024, 1, 2), 7)])
    store(elsewhere, [(at(2024, 1, 3), 9)])

    with django_assert_num_queries(1):
        by_keys = readings_latest(keys=["b", "a", "c", "unknown"])
    with django_assert_num_queries(1):
        by_platform = readings_latest(platform="north")

    expected = [("a", at(2024, 1, 1, 1), 5.0), ("b", at(2024, 1, 2), 7.0), ("c", None, None)]
    assert [(r.sensor, r.timestamp, r.value) for r in by_keys] == expected
    assert [(r.sensor, r.timestamp, r.value) for r in by_platform] == expected
    assert c.key == "c"


def test_sensor_list_filters_and_joins_the_platform(django_assert_num_queries):
    platform = PlatformFactory(slug="north")
    installation = InstallationFactory(platform=platform)
    SensorFactory(key="t1", platform=platform, installation=installation, kind="temperature")
    SensorFactory(key="g1", platform=platform, kind="gas", active=False)
    SensorFactory(key="t2", kind="temperature")

    with django_assert_num_queries(1):
        slugs = [s.platform.slug for s in sensor_list()]
    assert len(slugs) == 3
    assert [s.key for s in sensor_list(filters={"platform": "north"})] == ["g1", "t1"]
    assert [s.key for s in sensor_list(filters={"kind": "temperature"})] == ["t1", "t2"]
    assert [s.key for s in sensor_list(filters={"active": "false"})] == ["g1"]
    assert [s.key for s in sensor_list(filters={"installation": installation.pk})] == ["t1"]


def test_installation_list_filters_by_platform_slug():
    north = InstallationFactory(platform=PlatformFactory(slug="north"))
    InstallationFactory(platform=PlatformFactory(slug="south"))

    assert list(installation_list(filters={"platform": "north"})) == [north]
