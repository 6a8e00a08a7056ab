"""Time partitions of the readings table (PostgreSQL, pg_partman): made ahead, made on demand for readings that
landed in the default partition, and the migration that converts a filled plain table (and back)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from conftest import assert_schema_complete
from sensors.ingest import readings_ingest
from sensors.models import Reading, ReadingHourly, Transport
from sensors.services.partitions import default_partition_rows, partitioned, partitions_list, partitions_maintain
from sensors.tests.factories import SensorFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("postgresql"),  # SQLite keeps a plain readings table
]

BEFORE = [("sensors", "0005_transport_http_source")]
AFTER = [("sensors", "0007_reading_hourly_rollups")]


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def store(sensor, points) -> dict:
    return readings_ingest(
        messages=[{"sensor": sensor.key, "timestamp": ts.isoformat(), "value": value} for ts, value in points],
        transport=Transport.REST,
        decoded=True,
    ).as_dict()


def table_of(sensor_id: int, timestamp: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT tableoid::regclass::text FROM sensors_reading WHERE sensor_id = %s AND "timestamp" = %s',
            [sensor_id, timestamp],
        )
        return cursor.fetchone()[0]


def test_partitions_exist_ahead_of_now():
    assert partitioned()
    partitions_maintain()
    partitions = partitions_list()
    now = timezone.now()
    current = next(p for p in partitions if p.start <= now < p.end)
    ahead = [p for p in partitions if p.start >= current.end]
    assert len(ahead) >= 4  # SENSORS_PARTITION_PREMAKE
    assert all(p.start.day == 1 and p.start.hour == 0 for p in partitions)  # monthly, at UTC midnight
    assert all(b.start == a.end for a, b in zip(partitions, partitions[1:], strict=False))


def test_a_reading_without_partition_is_stored_then_moved_into_one_made_for_it():
    sensor = SensorFactory()
    old = at(2011, 2, 3, 4, 5)
    assert store(sensor, [(old, 1.5), (old + timedelta(days=1), 2.5)])["stored"] == 2
    assert table_of(sensor.pk, old) == "sensors_reading_default"
    assert default_partition_rows() == 2

    result = partitions_maintain()

    assert "sensors_reading_p2011_02" in result.created
    assert result.moved_from_default == 2
    assert table_of(sensor.pk, old) == "sensors_reading_p2011_02"
    assert default_partition_rows() == 0
    # Still one reading per (sensor, timestamp), now in its partition; ingest goes on as before.
    assert store(sensor, [(old, 9.0), (old + timedelta(hours=1), 3.5)]) == {
        "received": 2,
        "stored": 1,
        "duplicates": 1,
        "rejected": 0,
    }
    assert Reading.objects.get(sensor=sensor, timestamp=old).value == 1.5
    assert partitions_maintain().created == []  # idempotent


def test_copy_fast_path_and_duplicates_on_the_partitioned_table():
    sensor = SensorFactory()
    now = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    points = [(now - timedelta(seconds=s), float(s)) for s in range(2000)]
    assert store(sensor, points)["stored"] == 2000
    assert store(sensor, points[:10] + [(now - timedelta(seconds=5000), 1.0)])["stored"] == 1
    assert Reading.objects.filter(sensor=sensor).count() == 2001


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def relkind() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'sensors_reading'::regclass")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_migration_partitions_a_filled_table_without_losing_or_duplicating_a_row():
    old = migrate(BEFORE)
    assert relkind() == "r"
    Sensor = old.get_model("sensors", "Sensor")
    OldReading = old.get_model("sensors", "Reading")
    sensors = [Sensor.objects.create(key=f"migrate-{n}") for n in range(3)]
    start = at(2025, 11, 20)
    OldReading.objects.bulk_create(
        OldReading(sensor=sensors[n % 3], timestamp=start + timedelta(minutes=37 * n), value=n * 0.5)
        for n in range(4000)  # about 100 days: four months of partitions
    )
    before = sorted(OldReading.objects.values_list("id", "sensor_id", "timestamp", "value"))

    migrate(AFTER)

    assert relkind() == "p"
    after = sorted(Reading.objects.values_list("id", "sensor_id", "timestamp", "value"))
    assert after == before
    assert default_partition_rows() == 0
    names = {p.name for p in partitions_list()}
    assert {"sensors_reading_p2025_11", "sensors_reading_p2026_02"} <= names
    # The roll-ups of the rows already there were computed by the migration.
    assert sum(ReadingHourly.objects.values_list("count", flat=True)) == 4000
    # New readings get ids after the old ones, and the unique rule holds.
    sensor = sensors[0]
    store(sensor, [(start, 99.0), (timezone.now() - timedelta(minutes=1), 1.0)])
    newest = Reading.objects.order_by("-id").first()
    assert newest.id > max(row[0] for row in before)
    assert Reading.objects.filter(sensor_id=sensor.pk, timestamp=start).count() == 1

    kept = sorted(Reading.objects.values_list("id", "sensor_id", "timestamp", "value"))
    migrate(BEFORE)
    assert relkind() == "r"
    assert sorted(OldReading.objects.values_list("id", "sensor_id", "timestamp", "value")) == kept

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # the rest of the suite: latest schema
    assert_schema_complete()
    assert relkind() == "p"
    assert sorted(Reading.objects.values_list("id", "sensor_id", "timestamp", "value")) == kept
