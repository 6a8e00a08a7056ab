"""The dashboard's reads: states, sparklines, counts, the events feed, and their query counts (no N+1)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from common.exceptions import ApplicationError
from dashboard.selectors import (
    SPARKLINE_WIDTH,
    event_feed,
    overview_get,
    sensor_state,
    sparkline_draw,
)
from dashboard.tests.demo import demo_seed
from detection.models import Detection, SensorEvent, Status, SystemEvent
from sensors.models import Sensor
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("latest", "status", "expected"),
    [
        (None, None, "silent"),
        (None, Status.OK, "silent"),
        (NOW - timedelta(seconds=901), Status.CRITICAL, "silent"),
        (NOW - timedelta(seconds=900), Status.CRITICAL, "critical"),
        (NOW, Status.WARNING, "warning"),
        (NOW, Status.OK, "ok"),
        (NOW, Status.UNDEFINED, "undefined"),
        (NOW, None, "undefined"),
    ],
)
@override_settings(DASHBOARD_SILENT_SECONDS=900)
def test_sensor_state_rules(latest, status, expected):
    assert sensor_state(latest=latest, detection_status=status, now=NOW) == expected


def test_overview_states_counts_and_order():
    demo_seed(now=NOW)
    overview = overview_get(now=NOW)
    states = {row.sensor.key: row.state for group in overview.groups for row in group.rows}
    assert states == {
        "alpha-temperature": "ok",
        "alpha-methane": "critical",
        "alpha-pressure": "warning",
        "bravo-flow": "ok",
        "bravo-level": "undefined",  # detection disabled: no detection
        "bravo-humidity": "silent",  # last reading 3 h ago
        "lab-wind": "undefined",  # still learning
        "lab-temperature": "ok",
    }
    assert overview.counts == {"critical": 1, "warning": 1, "silent": 1, "undefined": 2, "ok": 3}
    # Platforms by name, no platform last; within one, sensors with unresolved anomalies first.
    assert [g.platform.name if g.platform else None for g in overview.groups] == [
        "Baltic Bravo", "North Sea Alpha", "Test lab", None,
    ]  # fmt: skip
    assert [row.sensor.key for row in overview.groups[1].rows] == [
        "alpha-methane",
        "alpha-pressure",
        "alpha-temperature",
    ]
    # Unresolved anomalies: the open one before the acknowledged one.
    assert [(a.sensor.key, a.status) for a in overview.anomalies] == [
        ("alpha-methane", "open"), ("alpha-pressure", "acknowledged"),
    ]  # fmt: skip
    methane = overview.groups[1].rows[0]
    assert methane.level == 246
    assert methane.unresolved == 1
    assert methane.age == timedelta(0)


def test_late_detections_do_not_set_the_state():
    sensor = SensorFactory()
    Sensor.objects.filter(pk=sensor.pk).update(latest_timestamp=NOW, latest_value=1.0)
    Detection.objects.create(sensor=sensor, timestamp=NOW - timedelta(minutes=10), level=250, status=Status.CRITICAL)
    Detection.objects.create(sensor=sensor, timestamp=NOW, level=None, status=Status.LATE)
    [row] = overview_get(now=NOW).groups[0].rows
    assert (row.state, row.level) == ("critical", 250)


def test_filters_platform_kind_state():
    demo_seed(now=NOW)
    keys = lambda o: sorted(row.sensor.key for g in o.groups for row in g.rows)  # noqa: E731
    assert keys(overview_get(filters={"platform": "alpha"}, now=NOW)) == [
        "alpha-methane", "alpha-pressure", "alpha-temperature",
    ]  # fmt: skip
    assert keys(overview_get(filters={"kind": "temperature"}, now=NOW)) == ["alpha-temperature", "lab-temperature"]
    only_ok = overview_get(filters={"kind": "temperature"}, state="ok", now=NOW)
    assert keys(only_ok) == ["alpha-temperature", "lab-temperature"]
    critical = overview_get(state="critical", now=NOW)
    assert keys(critical) == ["alpha-methane"]
    assert critical.counts["ok"] == 3  # the counts say what each state filter would show
    assert [a.sensor.key for a in critical.anomalies] == ["alpha-methane"]  # only the shown sensors' anomalies
    with pytest.raises(ApplicationError) as error:
        overview_get(filters={"kind": "lava"}, now=NOW)
    assert "kind" in error.value.fields
    with pytest.raises(ApplicationError) as error:
        overview_get(state="grumpy", now=NOW)
    assert "state" in error.value.fields


def test_sparklines_cover_the_last_24_hours():
    demo_seed(now=NOW)
    rows = {row.sensor.key: row for g in overview_get(now=NOW).groups for row in g.rows}
    line = rows["alpha-temperature"].sparkline
    assert line is not None
    assert len(line.lines) == 1
    points = line.lines[0].split()
    assert 47 <= len(points) <= 49  # half-hourly buckets over 24 h
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs)
    assert xs[0] < 3
    assert xs[-1] > SPARKLINE_WIDTH - 3
    # The silent sensor's line stops 3 hours before the end.
    silent_xs = [float(p.split(",")[0]) for p in rows["bravo-humidity"].sparkline.lines[0].split()]
    assert silent_xs[-1] < SPARKLINE_WIDTH * 21.5 / 24


def test_sparkline_gap_breaks_the_line():
    start = NOW - timedelta(hours=24)
    points = [(start + timedelta(minutes=30 * i), float(i)) for i in (0, 1, 2, 10, 11)]
    line = sparkline_draw(points, start=start, end=NOW)
    assert len(line.lines) == 2
    assert (line.low, line.high) == (0.0, 11.0)
    flat = sparkline_draw([(start, 5.0)], start=start, end=NOW)
    assert flat.lines == ["0.0,14.0 0.0,14.0"]  # one point still shows, mid-height


def test_overview_query_count_does_not_grow_with_sensors(django_assert_num_queries):
    demo_seed(now=NOW)
    with django_assert_num_queries(3):  # sensors (with states), sparklines, unresolved anomalies
        first = overview_get(now=NOW)
    platform = PlatformFactory()
    for n in range(10):
        sensor = SensorFactory(platform=platform, key=f"more-{n}")
        Sensor.objects.filter(pk=sensor.pk).update(latest_timestamp=NOW, latest_value=n)
    with django_assert_num_queries(3):
        second = overview_get(now=NOW)
    assert second.shown == first.shown + 10


def test_event_feed_merges_newest_first_and_filters():
    demo_seed(now=NOW)
    feed = list(event_feed())
    assert len(feed) == 5
    stored = [row["stored_at"] for row in feed]
    assert stored == sorted(stored, reverse=True)
    assert {row["source"] for row in feed} == {"sensor", "system"}
    newest_system = SystemEvent.objects.order_by("-created_at").first()
    assert feed[0]["source"] == "system"
    assert feed[0]["event_id"] == newest_system.pk
    assert feed[0]["event_kind"] == "alert_critical"
    assert feed[0]["sensor_key"] == "alpha-methane"

    assert {r["source"] for r in event_feed(filters={"source": "sensor"})} == {"sensor"}
    assert [r["event_kind"] for r in event_feed(filters={"kind": "not_available"})] == ["not_available"]
    mixed = event_feed(filters={"kind": "critical,alert_critical"})
    assert sorted(r["event_kind"] for r in mixed) == ["alert_critical", "critical"]
    by_sensor = event_feed(filters={"sensor": "alpha-methane"})
    assert sorted((r["source"], r["event_kind"]) for r in by_sensor) == [
        ("sensor", "critical"), ("system", "alert_critical"),
    ]  # fmt: skip
    assert list(event_feed(filters={"source": "system", "kind": "ok"})) == []
    for bad in ({"source": "moon"}, {"kind": "boom"}):
        with pytest.raises(ApplicationError) as error:
            event_feed(filters=bad)
        assert set(error.value.fields) == set(bad)


def test_event_feed_page_is_two_queries(django_assert_num_queries):
    sensor = SensorFactory()
    SensorEvent.objects.bulk_create(
        SensorEvent(sensor=sensor, kind="ok", at=NOW, message=f"event {n}") for n in range(120)
    )
    SystemEvent.objects.bulk_create(SystemEvent(kind="info", message=f"job {n}") for n in range(80))
    from django.core.paginator import Paginator

    with django_assert_num_queries(2):  # the count and the page
        page = Paginator(event_feed(), 50).get_page(2)
        rows = list(page)
    assert len(rows) == 50
    assert page.paginator.count == 200
