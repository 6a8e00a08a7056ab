"""Hourly roll-ups: kept exact by the ingestion service (late readings, re-imports), completed from raw rows, and
giving the bucketed queries the same answers as the raw rows (random ranges, DST days), on PostgreSQL and SQLite."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, Max, Min, Sum

from sensors import selectors
from sensors.ingest import readings_ingest
from sensors.ingest.rollups import rollups_complete
from sensors.models import Reading, ReadingHourly, Transport
from sensors.selectors import readings_bucketed, rollups_answer
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

OSLO = ZoneInfo("Europe/Oslo")
KOLKATA = ZoneInfo("Asia/Kolkata")
AGGS = ("avg", "min", "max", "sum", "count")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def store(sensor, points) -> dict:
    return readings_ingest(
        messages=[{"sensor": sensor.key, "timestamp": ts.isoformat(), "value": value} for ts, value in points],
        transport=Transport.REST,
        decoded=True,
    ).as_dict()


def raw_hours(sensor) -> dict:
    """The roll-ups as computed from the raw rows, by hour."""
    result = {}
    for reading in Reading.objects.filter(sensor=sensor).order_by("timestamp"):
        hour = reading.timestamp.replace(minute=0, second=0, microsecond=0)
        stats = result.setdefault(hour, [0, 0.0, reading.value, reading.value, reading.timestamp, reading.timestamp])
        stats[0] += 1
        stats[1] += reading.value
        stats[2], stats[3] = min(stats[2], reading.value), max(stats[3], reading.value)
        stats[5] = reading.timestamp
    return result


def stored_hours(sensor) -> dict:
    rows = ReadingHourly.objects.filter(sensor=sensor).order_by("hour")
    return {r.hour: [r.count, r.sum, r.min, r.max, r.first_timestamp, r.last_timestamp] for r in rows}


def assert_rollups_exact(sensor) -> None:
    expected, stored = raw_hours(sensor), stored_hours(sensor)
    assert stored.keys() == expected.keys()
    for hour, stats in expected.items():
        assert stored[hour][0] == stats[0]
        assert stored[hour][1] == pytest.approx(stats[1])
        assert stored[hour][2:] == stats[2:]


def raw_answer(monkeypatch, **query) -> list:
    with monkeypatch.context() as patch:
        patch.setattr(selectors, "rollups_answer", lambda **_: False)
        return [(b.start, b.value) for b in readings_bucketed(**query)]


def assert_same(monkeypatch, **query) -> list:
    """The roll-up path's buckets equal the raw path's (sums within rounding); returns them."""
    rolled = [(b.start, b.value) for b in readings_bucketed(**query)]
    raw = raw_answer(monkeypatch, **query)
    assert [start for start, _ in rolled] == [start for start, _ in raw]
    assert [value for _, value in rolled] == pytest.approx([value for _, value in raw], rel=1e-9)
    if query.get("agg") == "count":
        assert [value for _, value in rolled] == [value for _, value in raw]
    return rolled


def test_rollups_follow_ingest_late_readings_and_reimports():
    sensor = SensorFactory()
    first = [(at(2024, 12, 1, 10, m), m) for m in range(0, 60, 7)] + [(at(2024, 12, 1, 12, 5), -3)]
    assert store(sensor, first)["stored"] == len(first)
    assert_rollups_exact(sensor)

    # A late reading lands in its past hour and moves its min, first timestamp and count.
    store(sensor, [(at(2024, 12, 1, 9, 59, 59), -50), (at(2024, 12, 1, 10, 0, 0, 1), 99)])
    assert_rollups_exact(sensor)
    assert ReadingHourly.objects.get(sensor=sensor, hour=at(2024, 12, 1, 10)).max == 99

    # A re-import (duplicates, a few new) changes only what it stored.
    result = store(sensor, [*first, (at(2024, 12, 1, 12, 6), 4)])
    assert (result["stored"], result["duplicates"]) == (1, len(first))
    assert_rollups_exact(sensor)
    assert ReadingHourly.objects.get(sensor=sensor, hour=at(2024, 12, 1, 12)).count == 2


def test_random_ranges_give_the_raw_answer(monkeypatch):
    sensor = SensorFactory()
    rng = random.Random(16)  # noqa: S311 (test data, not secrets)
    start = at(2024, 3, 29)
    points = {start + timedelta(seconds=rng.randrange(5 * 86400)): round(rng.uniform(-20, 40), 3) for _ in range(3000)}
    store(sensor, sorted(points.items()))
    assert_rollups_exact(sensor)

    for _ in range(25):
        low = start + timedelta(seconds=rng.randrange(-3600, 5 * 86400))
        high = low + timedelta(seconds=rng.randrange(1, 4 * 86400))
        if rng.random() < 0.3:
            low = low.replace(minute=0, second=0)  # whole hours too
        bucket = rng.choice(["1h", "2h", "3h", "6h", "12h", "1d"])
        tz = rng.choice([UTC, OSLO])
        for agg in AGGS:
            assert_same(monkeypatch, sensor=sensor, bucket=bucket, agg=agg, tz=tz, start=low, end=high)
    # Open ranges too.
    for agg in AGGS:
        assert_same(monkeypatch, sensor=sensor, bucket="1d", agg=agg, tz=OSLO)


def test_a_dst_day_from_rollups(monkeypatch):
    sensor = SensorFactory()
    # Oslo springs forward on 2024-03-31 (a 23-hour day) and falls back on 2024-10-27 (25 hours).
    points = [(at(2024, 3, 30, 20) + timedelta(minutes=13 * i), i % 17) for i in range(400)]
    points += [(at(2024, 10, 26, 20) + timedelta(minutes=11 * i), i % 13) for i in range(500)]
    store(sensor, points)
    for day_start, day_end, hours in (
        (at(2024, 3, 30, 23), at(2024, 3, 31, 22), 23),
        (at(2024, 10, 26, 22), at(2024, 10, 27, 23), 25),
    ):
        assert (day_end - day_start) == timedelta(hours=hours)
        assert rollups_answer(bucket="1d", tz=OSLO, low=day_start, high=day_end)
        buckets = assert_same(
            monkeypatch, sensor=sensor, bucket="1d", agg="count", tz=OSLO, start=day_start - timedelta(hours=3),
            end=day_end + timedelta(hours=3),
        )  # fmt: skip
        day = dict(buckets)[day_start.astimezone(OSLO)]
        assert day == Reading.objects.filter(sensor=sensor, timestamp__gte=day_start, timestamp__lt=day_end).count()


def test_rollups_answer_only_whole_hour_buckets():
    low, high = at(2024, 1, 1), at(2024, 12, 31)
    assert rollups_answer(bucket="1h", tz=UTC, low=low, high=high)
    assert rollups_answer(bucket="6h", tz=KOLKATA, low=low, high=high)  # epoch-aligned hours: any zone
    assert rollups_answer(bucket="1d", tz=OSLO, low=low, high=high)
    assert not rollups_answer(bucket="1d", tz=KOLKATA, low=low, high=high)  # local midnight at 18:30 UTC
    assert not rollups_answer(bucket="30m", tz=UTC, low=low, high=high)


def test_rollups_are_read_once_raw_rows_are_gone(monkeypatch):
    sensor = SensorFactory()
    store(sensor, [(at(2024, 6, 1) + timedelta(minutes=5 * i), float(i)) for i in range(12 * 24 * 3)])
    query = {"sensor": sensor, "bucket": "1d", "tz": UTC, "start": at(2024, 6, 1), "end": at(2024, 6, 4)}
    before = {agg: [(b.start, b.value) for b in readings_bucketed(agg=agg, **query)] for agg in AGGS}
    Reading.objects.filter(sensor=sensor).delete()  # as retention would

    for agg in AGGS:
        assert [(b.start, b.value) for b in readings_bucketed(agg=agg, **query)] == before[agg]
    assert raw_answer(monkeypatch, agg="avg", **query) == []


def test_kolkata_days_read_raw_rows():
    sensor = SensorFactory()
    store(sensor, [(at(2024, 6, 1, 18, 0), 1), (at(2024, 6, 1, 18, 45), 5)])
    ReadingHourly.objects.filter(sensor=sensor).update(count=999)  # a roll-up answer would show this

    buckets = readings_bucketed(
        sensor=sensor, bucket="1d", agg="count", tz=KOLKATA, start=at(2024, 6, 1), end=at(2024, 6, 3)
    )

    assert [(b.start.isoformat(), b.value) for b in buckets] == [
        ("2024-06-01T00:00:00+05:30", 1),
        ("2024-06-02T00:00:00+05:30", 1),
    ]


def test_complete_fixes_hours_written_around_ingest_and_keeps_fuller_rollups():
    sensor = SensorFactory()
    store(sensor, [(at(2024, 5, 1, 10, m), m) for m in range(10)])
    # Rows written around the ingestion service (a bulk load): no roll-up knows them.
    Reading.objects.bulk_create(Reading(sensor=sensor, timestamp=at(2024, 5, 1, 11, m), value=m) for m in range(5))
    Reading.objects.bulk_create([Reading(sensor=sensor, timestamp=at(2024, 5, 1, 10, 30), value=100)])
    # Raw rows partly deleted (retention of another kind): the roll-up stays the fuller record.
    store(sensor, [(at(2024, 5, 1, 12, m), m) for m in range(6)])
    Reading.objects.filter(sensor=sensor, timestamp__gte=at(2024, 5, 1, 12, 3)).delete()

    fixed = rollups_complete(start=at(2024, 5, 1), end=at(2024, 5, 2))

    assert fixed == 2  # hours 10 and 11
    hours = stored_hours(sensor)
    assert hours[at(2024, 5, 1, 10)][:4] == [11, 145.0, 0.0, 100.0]
    assert hours[at(2024, 5, 1, 11)][:4] == [5, 10.0, 0.0, 4.0]
    assert hours[at(2024, 5, 1, 12)][0] == 6
    assert rollups_complete(start=at(2024, 5, 1), end=at(2024, 5, 2)) == 0


def test_rollups_aggregate_like_raw_rows_in_the_database():
    sensor = SensorFactory()
    store(sensor, [(at(2024, 7, 1, h, m), h * m) for h in range(3) for m in range(0, 60, 3)])
    raw = Reading.objects.filter(sensor=sensor).aggregate(
        n=Count("id"), s=Sum("value"), lo=Min("value"), hi=Max("value")
    )
    rolled = ReadingHourly.objects.filter(sensor=sensor).aggregate(
        n=Sum("count"), s=Sum("sum"), lo=Min("min"), hi=Max("max")
    )
    assert rolled == {"n": raw["n"], "s": pytest.approx(raw["s"]), "lo": raw["lo"], "hi": raw["hi"]}


def test_hours_before_1970_and_at_the_last_microsecond():
    sensor = SensorFactory()
    store(sensor, [(datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), 1), (at(2024, 1, 1, 0, 59, 59, 999999), 2)])
    assert_rollups_exact(sensor)
    assert set(stored_hours(sensor)) == {at(1969, 12, 31, 23), at(2024, 1, 1, 0)}


def test_one_batch_of_several_sensors_in_any_order_lands_in_each_ones_hours():
    """The storage step hands the roll-ups a batch as it arrived: sensors interleaved, out of time order, readings
    exactly on hour boundaries and at their last microsecond."""
    sensors = [SensorFactory() for _ in range(3)]
    rng = random.Random(16)  # noqa: S311 (test data)
    messages = []
    for sensor in sensors:
        stamps = {at(2024, 3, 30, 22) + timedelta(minutes=rng.randrange(0, 60 * 6)) for _ in range(150)}
        stamps |= {at(2024, 3, 31, 1), at(2024, 3, 31, 0, 59, 59, 999999)}
        messages += [
            {"sensor": sensor.key, "timestamp": ts.isoformat(), "value": rng.uniform(-50, 50)} for ts in stamps
        ]
    rng.shuffle(messages)
    result = readings_ingest(messages=messages, transport=Transport.REST, decoded=True)

    assert result.stored == len(messages)
    for sensor in sensors:
        assert_rollups_exact(sensor)
        assert len(stored_hours(sensor)) == 6
