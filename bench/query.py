"""Bucketed-query speed on PostgreSQL: the real selector against hand-written SQL in the same run (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.query [--repeat 7]

It works in a separate database, `sensorhub_bench`, on the server DATABASE_URL names (created and migrated if
missing). The first run loads 10,000,000 readings with COPY, interleaved in time as devices deliver them: one sensor
with 30 days of 1 Hz data (2,592,000 rows, 2024-03-15 to 2024-04-14, across Oslo's spring daylight-saving change)
and four others filling the table to 10M. Later runs reuse the table. Then, with a warm cache, it times:

- 5-minute buckets, avg, over the 30 days: `sensors.selectors.readings_bucketed` (the ORM query, rows fetched and
  turned into Python objects) against the equivalent SQL on a raw psycopg cursor;
- daily buckets at Oslo midnight, the same way. Since issue 16 the selector answers these from the hourly
  roll-ups (completed from the raw rows after the load), so this line compares the roll-ups with raw SQL;
  `bench/rollups.py` compares the selector's two ways.

Each is run `--repeat` times, alternating the two, and the medians and their ratio are printed (target ≤ 1.5×).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from sensors.synthetic.signals import sine_day

BENCH_DB = "sensorhub_bench"
MAIN_KEY = "bench.main"
FILL_KEYS = [f"bench.fill-{n}" for n in range(4)]
START = datetime(2024, 3, 15, tzinfo=UTC)
DAYS = 30
MAIN_ROWS = DAYS * 86400  # 2,592,000
TOTAL_ROWS = 10_000_000
FILL_ROWS = (TOTAL_ROWS - MAIN_ROWS) // len(FILL_KEYS)  # 1,852,000 each: 1 Hz over the first ~21.4 days

BUCKET_SQL = (
    "SELECT date_bin(INTERVAL '300 seconds', \"timestamp\", TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket, "
    'avg(value) FROM sensors_reading WHERE sensor_id = %s AND "timestamp" >= %s AND "timestamp" < %s '
    "GROUP BY 1 ORDER BY 1"
)
DAILY_SQL = (
    "SELECT date_trunc('day', \"timestamp\" AT TIME ZONE 'Europe/Oslo') AS day, avg(value) FROM sensors_reading "
    'WHERE sensor_id = %s AND "timestamp" >= %s AND "timestamp" < %s GROUP BY 1 ORDER BY 1'
)


def load(connection, sensors: dict[str, int]) -> None:
    """COPY 10M rows, interleaved in time across sensors, then rebuild the unique index and VACUUM ANALYZE."""
    main_id, fill_ids = sensors[MAIN_KEY], [sensors[key] for key in FILL_KEYS]
    day_cycle = (10 * sine_day(np.arange(86400), points_per_day=86400)).tolist()
    noise = [((n * 7919) % 1000) / 1000 - 0.5 for n in range(997)]
    from sensors.services.partitions import partitions_create

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sensors_reading")
        # The months' partitions first (PostgreSQL routes each row to its own), or all rows land in the default one.
        partitions_create(start=START, end=START + timedelta(days=DAYS))
        # Bulk load: constraint and FK checks off during COPY (the rows are consistent by construction), the
        # unique index rebuilt once afterwards instead of maintained row by row.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("ALTER TABLE sensors_reading DROP CONSTRAINT sensors_reading_unique_sensor_timestamp")
        raw = cursor.cursor
        with raw.copy('COPY sensors_reading (sensor_id, "timestamp", value) FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types(["bigint", "timestamptz", "float8"])
            second = timedelta(seconds=1)
            moment = START
            for s in range(MAIN_ROWS):
                phase = day_cycle[s % 86400]
                copy.write_row((main_id, moment, 20.0 + phase + noise[s % 997]))
                if s < FILL_ROWS:
                    for n, sensor_id in enumerate(fill_ids):
                        copy.write_row((sensor_id, moment, 5.0 * n + phase + noise[(s + n) % 997]))
                moment += second
                if s % 500_000 == 0 and s:
                    print(f"  {s * 100 // MAIN_ROWS:3d} % of the time span written")
        copied = time.perf_counter()
        cursor.execute(
            "ALTER TABLE sensors_reading ADD CONSTRAINT sensors_reading_unique_sensor_timestamp "
            'UNIQUE (sensor_id, "timestamp")'
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(
            "UPDATE sensors_sensor s SET latest_timestamp = r.ts, latest_value = r.value FROM ("
            'SELECT DISTINCT ON (sensor_id) sensor_id, "timestamp" AS ts, value FROM sensors_reading '
            'ORDER BY sensor_id, "timestamp" DESC) r WHERE r.sensor_id = s.id'
        )
        indexed = time.perf_counter()
        cursor.execute("VACUUM ANALYZE sensors_reading")
    done = time.perf_counter()
    print(
        f"loaded {TOTAL_ROWS:,} rows: COPY {copied - started:.0f} s ({TOTAL_ROWS / (copied - started):,.0f} rows/s), "
        f"index {indexed - copied:.0f} s, VACUUM ANALYZE {done - indexed:.0f} s"
    )


def ensure_data(connection) -> int:
    from sensors.models import Reading, Sensor, SensorKind

    sensors = {}
    for key in [MAIN_KEY, *FILL_KEYS]:
        sensor, _ = Sensor.objects.get_or_create(key=key, defaults={"kind": SensorKind.TEMPERATURE})
        sensors[key] = sensor.pk
    main_rows = Reading.objects.filter(sensor_id=sensors[MAIN_KEY]).count()
    total = Reading.objects.count()
    if main_rows == MAIN_ROWS and total == TOTAL_ROWS:
        print(f"reusing {total:,} readings in {BENCH_DB} ({main_rows:,} of {MAIN_KEY})")
    else:
        print(f"loading {TOTAL_ROWS:,} readings into {BENCH_DB} (found {total:,}) ...")
        load(connection, sensors)
    from sensors.ingest.rollups import rollups_complete

    # COPY went around the ingestion service: the hourly roll-ups that daily buckets read are made here (once).
    started = time.perf_counter()
    hours = rollups_complete()
    if hours:
        print(f"hourly roll-ups completed: {hours:,} hours in {time.perf_counter() - started:.0f} s")
    return sensors[MAIN_KEY]


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def compare(label: str, orm, sql, repeat: int) -> None:
    orm_rows, sql_rows = orm(), sql()  # warm the cache (and check both give the same answer)
    assert len(orm_rows) == len(sql_rows), (len(orm_rows), len(sql_rows))
    assert all(math.isclose(a, b) for a, b in zip([b.value for b in orm_rows], [r[1] for r in sql_rows], strict=True))
    orm_times, sql_times = [], []
    for _ in range(repeat):
        orm_times.append(timed(orm))
        sql_times.append(timed(sql))
    orm_median, sql_median = statistics.median(orm_times), statistics.median(sql_times)
    print(
        f"{label:<44} {len(orm_rows):>7,} {sql_median * 1000:>10.1f} {orm_median * 1000:>10.1f} "
        f"{orm_median / sql_median:>7.2f}×"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each query (default 7)")
    args = parser.parse_args()

    from bench.setup import django_on_scratch_database  # here: `python bench/query.py` re-runs itself as a module first

    django_on_scratch_database(script="bench/query.py", name=BENCH_DB)
    from zoneinfo import ZoneInfo

    from django.db import connection

    from sensors.models import Sensor
    from sensors.selectors import readings_bucketed

    sensor = Sensor.objects.get(pk=ensure_data(connection))
    start, end = START, START + timedelta(days=DAYS)
    oslo = ZoneInfo("Europe/Oslo")
    raw = connection.cursor().cursor  # the psycopg cursor itself, beneath Django

    def raw_rows(sql: str):
        def run():
            raw.execute(sql, [sensor.pk, start, end])
            return raw.fetchall()

        return run

    version = connection.cursor().connection.info.server_version
    print(f"\nPostgreSQL {version // 10000}.{version % 10000}, {os.cpu_count()} CPUs; {args.repeat} runs each, warm")
    print(f"{'query':<44} {'buckets':>7} {'SQL ms':>10} {'ORM ms':>10} {'ratio':>8}")
    compare(
        "5-minute avg, 30 days of 1 Hz (2,592,000 rows)",
        lambda: readings_bucketed(sensor=sensor, bucket="5m", agg="avg", start=start, end=end),
        raw_rows(BUCKET_SQL),
        args.repeat,
    )
    compare(
        "daily avg at Europe/Oslo midnight, 30 days",
        lambda: readings_bucketed(sensor=sensor, bucket="1d", agg="avg", tz=oslo, start=start, end=end),
        raw_rows(DAILY_SQL),
        args.repeat,
    )


if __name__ == "__main__":
    if not __package__:
        # `python bench/query.py`: run again as `python -m bench.query` from the project root so the project's
        # packages import without touching sys.path.
        root = Path(__file__).resolve().parent.parent
        sys.exit(subprocess.call([sys.executable, "-m", "bench.query", *sys.argv[1:]], cwd=root))
    main()
