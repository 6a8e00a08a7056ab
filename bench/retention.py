"""Retention on PostgreSQL: dropping a month partition of 10M readings vs deleting the same rows, in one run
(docs/benchmarks.md, "Retention").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.retention [--rows 10000000]

It works in a scratch database `<DATABASE_URL's name>_bench_retention` (created and migrated if missing: the
readings table partitioned by month). Each way starts from the same data: `--rows` readings of 4 sensors at 1 Hz
in January 2023 and a tenth as many after it (the table goes on), loaded with INSERT ... SELECT FROM generate_series.

- drop, in the partitioned readings table: the roll-ups of the month verified against the raw rows
  (`rollups_complete`, what the retention job runs before it drops anything), then `DROP TABLE` of the partition;
- delete, in a plain table as the readings table was before partitioning: one `DELETE ... WHERE "timestamp" <
  '2023-02-01'` (the fastest way to delete rows; batches are slower), then `VACUUM` (needed before the space is
  reused; the file keeps its size).

Printed: the seconds of each step and the readings table's size (all partitions, indexes included) after each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MONTH = datetime(2023, 1, 1, tzinfo=UTC)
NEXT = datetime(2023, 2, 1, tzinfo=UTC)
SENSORS = 4
PLAIN = "bench_reading_plain"


def size(cursor, table: str) -> int:
    """Bytes of the table with its indexes (of every partition, for the partitioned one)."""
    if table == "sensors_reading":
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'sensors_reading'::regclass"
        )
    else:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
    return int(cursor.fetchone()[0])


def fill(cursor, table: str, sensor_ids: list[int], rows: int) -> float:
    """`rows` readings in January 2023 and a tenth as many from 2023-02-01 on (the table goes on after the month
    that expires), unique index built after the rows; returns the seconds."""
    per_sensor = rows // len(sensor_ids)
    started = time.perf_counter()
    cursor.execute("SET session_replication_role = replica")  # no per-row foreign-key checks while loading
    cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_unique")
    cursor.execute("ALTER TABLE sensors_reading DROP CONSTRAINT IF EXISTS sensors_reading_unique_sensor_timestamp")
    for begin, count in ((MONTH, per_sensor), (NEXT, per_sensor // 10)):
        cursor.execute(
            f'INSERT INTO {table} (sensor_id, "timestamp", value) '  # noqa: S608
            "SELECT s, %s::timestamptz + n * INTERVAL '1 second', n %% 1000 "
            "FROM unnest(%s::bigint[]) s, generate_series(0, %s - 1) n",
            [begin, sensor_ids, count],
        )
    cursor.execute("SET session_replication_role = DEFAULT")
    cursor.execute(
        "ALTER TABLE sensors_reading ADD CONSTRAINT sensors_reading_unique_sensor_timestamp "
        'UNIQUE (sensor_id, "timestamp")'
    )
    if table != "sensors_reading":
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT {table}_unique UNIQUE (sensor_id, "timestamp")')
    cursor.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="readings in the month (default 10,000,000)")
    args = parser.parse_args()

    from bench.setup import django_on_scratch_database

    django_on_scratch_database(script="bench/retention.py", suffix="_bench_retention")
    from django.db import connection

    from sensors.ingest.rollups import rollups_complete
    from sensors.models import ReadingHourly, Sensor
    from sensors.services.partitions import partitions_create

    connection.ensure_connection()
    ids = [Sensor.objects.get_or_create(key=f"bench.retention-{n}")[0].pk for n in range(SENSORS)]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sensors_reading")
        ReadingHourly.objects.filter(sensor_id__in=ids).delete()
        partitions_create(start=MONTH, end=NEXT + timedelta(days=40))
        partition = f"sensors_reading_p{MONTH:%Y_%m}"

        print(f"drop: loading {args.rows:,} readings into {partition}, a tenth as many into the next month ...")
        loaded = fill(cursor, "sensors_reading", ids, args.rows)
        written = timed(lambda: rollups_complete(start=MONTH, end=NEXT))
        before = size(cursor, "sensors_reading")
        verify = timed(lambda: rollups_complete(start=MONTH, end=NEXT))
        drop = timed(lambda: cursor.execute(f"DROP TABLE {partition}"))
        after_drop = size(cursor, "sensors_reading")
        print(f"  load {loaded:.0f} s, roll-ups written {written:.1f} s")
        cursor.execute("TRUNCATE sensors_reading")

        print("delete: the same rows in one plain (unpartitioned) table, as before partitioning ...")
        cursor.execute(f"DROP TABLE IF EXISTS {PLAIN}")
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE sensors_reading INCLUDING DEFAULTS INCLUDING IDENTITY)")
        fill(cursor, PLAIN, ids, args.rows)
        plain_before = size(cursor, PLAIN)
        delete = timed(lambda: cursor.execute(f'DELETE FROM {PLAIN} WHERE "timestamp" < %s', [NEXT]))  # noqa: S608
        after_delete = size(cursor, PLAIN)
        vacuum = timed(lambda: cursor.execute(f"VACUUM {PLAIN}"))
        after_vacuum = size(cursor, PLAIN)
        cursor.execute(f"DROP TABLE {PLAIN}")

    print(f"\n{'way':<52} {'seconds':>9} {'table after':>12}")
    print(f"{'(before: partitioned / plain)':<52} {'':>9} {mb(before):>12} / {mb(plain_before)}")
    print(f"{'drop: verify roll-ups of the month (rollups_complete)':<52} {verify:>9.2f}")
    print(f"{'drop: DROP TABLE of the partition':<52} {drop:>9.3f} {mb(after_drop):>12}")
    print(f"{'delete: one DELETE of the same rows':<52} {delete:>9.2f} {mb(after_delete):>12}")
    print(f"{'delete: then VACUUM':<52} {vacuum:>9.2f} {mb(after_vacuum):>12}")
    print(
        f"DROP is {delete / drop:,.0f}x faster than DELETE ({(delete + vacuum) / drop:,.0f}x with VACUUM); "
        f"{(delete + vacuum) / (verify + drop):,.1f}x counting the roll-up verification before the drop"
    )


if __name__ == "__main__":
    if not __package__:
        root = Path(__file__).resolve().parent.parent
        sys.exit(subprocess.call([sys.executable, "-m", "bench.retention", *sys.argv[1:]], cwd=root))
    main()
