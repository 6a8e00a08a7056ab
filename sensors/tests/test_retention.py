"""Retention: only what is past its cutoff goes (whole partitions on PostgreSQL, batches on SQLite), only after its
roll-ups were completed; detections follow, anomalies and events stay; a system event says what went; the dry run
changes nothing."""

from datetime import UTC, datetime, timedelta

import factory
import pytest
from django.core.management import call_command
from django.db import connection

from detection.models import Anomaly, Detection, SystemEvent
from detection.tests.factories import AnomalyFactory, DetectionFactory
from sensors.ingest import readings_ingest
from sensors.models import Reading, ReadingHourly, Transport
from sensors.services.partitions import partitions_list, partitions_maintain
from sensors.services.retention import raw_retention_apply
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 13, 30, tzinfo=UTC)
POSTGRES = connection.vendor == "postgresql"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def store(sensor, points) -> None:
    readings_ingest(
        messages=[{"sensor": sensor.key, "timestamp": ts.isoformat(), "value": value} for ts, value in points],
        transport=Transport.REST,
        decoded=True,
        received_at=NOW,
    )


def daily(sensor, start: datetime, days: int) -> list:
    """One reading every 6 hours from `start` for `days` days."""
    return [(start + timedelta(hours=6 * i), float(i)) for i in range(days * 4)]


def hourly_total(sensor) -> int:
    return sum(ReadingHourly.objects.filter(sensor=sensor).values_list("count", flat=True))


@pytest.fixture
def filled(settings):
    """Readings from 2026-07-01 to 2026-12-02 of a sensor on the site-wide retention (30 days)."""
    settings.SENSORS_RAW_RETENTION_DAYS = 30
    sensor = SensorFactory(key="site-wide")
    store(sensor, daily(sensor, at(2026, 7, 1), 155))
    partitions_maintain()  # old months' partitions, made on demand
    return sensor


def test_nothing_goes_without_a_retention(settings):
    settings.SENSORS_RAW_RETENTION_DAYS = None
    sensor = SensorFactory()
    store(sensor, daily(sensor, at(2020, 1, 1), 10))
    report = raw_retention_apply(now=NOW)
    assert (report.groups, report.partitions) == ([], [])
    assert Reading.objects.filter(sensor=sensor).count() == 40


def test_dry_run_reports_and_changes_nothing(filled, capsys):
    raws, hours = Reading.objects.count(), ReadingHourly.objects.count()
    report = raw_retention_apply(now=NOW, dry_run=True)
    cutoff = NOW.replace(minute=0) - timedelta(days=30)  # 2026-11-03 13:00
    bound = at(2026, 11, 1) if POSTGRES else cutoff  # whole partitions on PostgreSQL
    expected = Reading.objects.filter(timestamp__lt=bound).count()
    assert report.partition_rows + report.rows_deleted == expected > 0
    if POSTGRES:
        assert [p["name"] for p in report.partitions] == [f"sensors_reading_p2026_{m:02}" for m in range(7, 11)]
    assert (Reading.objects.count(), ReadingHourly.objects.count()) == (raws, hours)
    assert not SystemEvent.objects.exists()


def test_apply_retention_command_dry_run_prints_what_would_go(filled, capsys):
    call_command("apply_retention", "--dry-run")
    out = capsys.readouterr().out
    assert "30 days (site-wide setting; 1 sensors)" in out
    assert "would drop" in out
    assert Reading.objects.filter(timestamp__lt=at(2026, 8, 1)).exists()


def test_old_raw_rows_go_after_their_rollups_are_complete(filled):
    sensor = filled
    # Rows written around the ingestion service: no roll-up counts them until retention completes them.
    Reading.objects.bulk_create(Reading(sensor=sensor, timestamp=at(2026, 8, 10, 1, m), value=1000) for m in range(7))
    total = Reading.objects.filter(sensor=sensor).count()
    kept_bound = at(2026, 11, 1) if POSTGRES else at(2026, 11, 3, 13)
    kept = Reading.objects.filter(timestamp__gte=kept_bound).count()
    detections_old = DetectionFactory.create_batch(3, sensor=sensor, timestamp=factory_times(at(2026, 8, 1)))
    detections_new = DetectionFactory.create_batch(2, sensor=sensor, timestamp=factory_times(at(2026, 11, 20)))
    anomaly = AnomalyFactory(sensor=sensor, started_at=at(2026, 8, 1))

    report = raw_retention_apply(now=NOW)

    assert Reading.objects.filter(sensor=sensor).count() == kept
    assert report.partition_rows + report.rows_deleted == total - kept
    assert not Reading.objects.filter(timestamp__lt=kept_bound).exists()
    # Roll-ups kept for ever, and they count the rows written around ingest too.
    assert hourly_total(sensor) == total
    assert ReadingHourly.objects.get(sensor=sensor, hour=at(2026, 8, 10, 1)).count == 7
    assert report.hours_completed >= 1
    # Detections follow the same bound; anomalies stay.
    remaining = set(Detection.objects.values_list("pk", flat=True))
    assert remaining == {d.pk for d in detections_new}
    assert not remaining & {d.pk for d in detections_old}
    assert Anomaly.objects.filter(pk=anomaly.pk).exists()
    # Reported as a system event.
    event = SystemEvent.objects.get(job="apply_retention")
    assert event.kind == SystemEvent.Kind.INFO
    assert event.message == report.summary()
    assert event.data["partitions"] == report.partitions
    assert "3 detections" in event.message
    if POSTGRES:
        names = {p.name for p in partitions_list()}
        assert "sensors_reading_p2026_10" not in names
        assert {"sensors_reading_p2026_11", "sensors_reading_p2026_12"} <= names
    # A second run finds nothing more.
    again = raw_retention_apply(now=NOW)
    assert (again.partition_rows, again.rows_deleted, again.anything) == (0, 0, False)


def factory_times(start: datetime):
    return factory.Sequence(lambda n: start + timedelta(minutes=n))


def test_a_platform_with_a_longer_retention_keeps_its_partitions(filled):
    long_lived = SensorFactory(platform=PlatformFactory(raw_retention_days=365))
    store(long_lived, daily(long_lived, at(2026, 9, 1), 5))
    site_rows_in_september = Reading.objects.filter(
        sensor=filled, timestamp__gte=at(2026, 9, 1), timestamp__lt=at(2026, 10, 1)
    ).count()

    report = raw_retention_apply(now=NOW)

    # The long-lived platform's rows stay; the site-wide sensor's rows in that month go row by row.
    assert Reading.objects.filter(sensor=long_lived).count() == 20
    assert not Reading.objects.filter(sensor=filled, timestamp__lt=at(2026, 11, 1)).exists()
    if POSTGRES:
        names = {p.name for p in partitions_list()}
        assert "sensors_reading_p2026_09" in names
        assert "sensors_reading_p2026_08" not in names
        assert report.rows_deleted == site_rows_in_september


def test_a_platform_with_a_shorter_retention_loses_rows_up_to_its_exact_cutoff(filled):
    short = SensorFactory(platform=PlatformFactory(raw_retention_days=7))
    store(short, daily(short, at(2026, 11, 10), 23))

    raw_retention_apply(now=NOW)

    cutoff = at(2026, 11, 26, 13)
    assert not Reading.objects.filter(sensor=short, timestamp__lt=cutoff).exists()
    assert Reading.objects.filter(sensor=short, timestamp__gte=cutoff).count() == len(
        [p for p in daily(short, at(2026, 11, 10), 23) if p[0] >= cutoff]
    )
    assert hourly_total(short) == 23 * 4


def test_apply_retention_command_drops_and_says_so(filled, capsys):
    call_command("apply_retention")
    out = capsys.readouterr().out
    assert "Retention dropped" in out
    # Relative to the real now: everything of 2026-07..10 is past 30 days whenever this runs (after 2026-12-01).
    assert not Reading.objects.filter(timestamp__lt=at(2026, 10, 1)).exists()
    assert SystemEvent.objects.filter(job="apply_retention").count() == 1


def test_maintain_partitions_command_lists_them(capsys):
    call_command("maintain_partitions")
    out = capsys.readouterr().out
    if POSTGRES:
        assert "sensors_reading_p" in out
        assert "partition(s) created" in out
    else:
        assert "not partitioned" in out
