"""Hourly roll-ups on PostgreSQL, each as a ratio measured in the same run (docs/benchmarks.md, "Roll-ups").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.rollups \
        [--days 365] [--repeat 3] [--rows 200000] [--parts query,ingest]

It works in a scratch database `<DATABASE_URL's name>_bench_rollups` (created and migrated if missing: the readings
table partitioned by month) and prints:

- query: one sensor with `--days` days of 1 Hz readings (365: 31,536,000 rows, loaded once with one
  INSERT ... SELECT FROM generate_series, reused by later runs), its roll-ups completed from the raw rows (timed);
  then daily averages at Europe/Oslo midnight over the whole span through `sensors.selectors.readings_bucketed`,
  from the roll-ups and from the raw rows (the same selector with roll-ups refused), `--repeat` times each,
  alternating, warm; the answers must be equal (within 1e-9 relative) and the ratio of the medians is printed;
- ingest: the ingestion service (`readings_ingest`, JSON messages as the stream consumer hands them over, batches
  of 5,000) with and without roll-up maintenance (`rollups_add` replaced by a no-op for the "without" runs),
  alternating batches, for two shapes: 100 sensors (50 readings of each per batch) and 5,000 sensors (one
  reading of each per batch, the most hours touched per batch).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MAIN_KEY = "bench.year"
START = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 5000


def load_year(connection, sensor_id: int, days: int) -> None:
    """One INSERT ... SELECT of `days` days of 1 Hz readings (a daily sine with noise), the unique constraint
    dropped during the load and rebuilt once; then VACUUM ANALYZE."""
    from sensors.services.partitions import partitions_create

    end = START + timedelta(days=days)
    partitions_create(start=START, end=end)  # else every row lands in the default partition
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sensors_readinghourly WHERE sensor_id = %s", [sensor_id])
        cursor.execute("TRUNCATE sensors_reading")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        # Bulk load: no per-row foreign-key check (31.5M deferred trigger events at commit otherwise); the rows
        # are consistent by construction.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("ALTER TABLE sensors_reading DROP CONSTRAINT sensors_reading_unique_sensor_timestamp")
        cursor.execute(
            'INSERT INTO sensors_reading (sensor_id, "timestamp", value) '
            "SELECT %s, t, 20 + 10 * sin(extract(epoch FROM t) * pi() / 43200) + random() - 0.5 "
            "FROM generate_series(%s::timestamptz, %s::timestamptz - INTERVAL '1 second', INTERVAL '1 second') t",
            [sensor_id, START, end],
        )
        loaded = time.perf_counter()
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(
            "ALTER TABLE sensors_reading ADD CONSTRAINT sensors_reading_unique_sensor_timestamp "
            'UNIQUE (sensor_id, "timestamp")'
        )
        cursor.execute(
            "UPDATE sensors_sensor SET latest_timestamp = %s, latest_value = 0 WHERE id = %s",
            [end - timedelta(seconds=1), sensor_id],
        )
        indexed = time.perf_counter()
        cursor.execute("VACUUM ANALYZE sensors_reading")
    print(
        f"loaded {days * 86400:,} rows: INSERT {loaded - started:.0f} s, unique index {indexed - loaded:.0f} s, "
        f"VACUUM ANALYZE {time.perf_counter() - indexed:.0f} s"
    )


def bench_query(days: int, repeat: int) -> None:
    from zoneinfo import ZoneInfo

    from django.db import connection

    from sensors import selectors
    from sensors.ingest.rollups import rollups_complete
    from sensors.models import Reading, ReadingHourly, Sensor, SensorKind

    sensor, _ = Sensor.objects.get_or_create(key=MAIN_KEY, defaults={"kind": SensorKind.TEMPERATURE})
    rows = days * 86400
    if Reading.objects.filter(sensor=sensor).count() != rows:
        print(f"loading {rows:,} readings of {MAIN_KEY} ...")
        load_year(connection, sensor.pk, days)
    else:
        print(f"reusing {rows:,} readings of {MAIN_KEY}")
    started = time.perf_counter()
    fixed = rollups_complete(sensor_ids=[sensor.pk])
    print(f"roll-ups completed from raw rows: {fixed:,} hours written in {time.perf_counter() - started:.1f} s")
    assert sum(ReadingHourly.objects.filter(sensor=sensor).values_list("count", flat=True)) == rows
    sensor.refresh_from_db()

    oslo = ZoneInfo("Europe/Oslo")
    start, end = START, START + timedelta(days=days)

    def rolled():
        return selectors.readings_bucketed(sensor=sensor, bucket="1d", agg="avg", tz=oslo, start=start, end=end)

    def raw():
        answer = selectors.rollups_answer
        selectors.rollups_answer = lambda **_: False  # the same selector, made to read raw rows
        try:
            return rolled()
        finally:
            selectors.rollups_answer = answer

    a, b = rolled(), raw()  # warm, and the answers must agree
    assert [x.start for x in a] == [x.start for x in b], "bucket starts differ"
    assert all(math.isclose(x.value, y.value, rel_tol=1e-9) for x, y in zip(a, b, strict=True)), "values differ"
    rolled_times, raw_times = [], []
    for _ in range(repeat):
        rolled_times.append(timed(rolled))
        raw_times.append(timed(raw))
    r, w = statistics.median(rolled_times), statistics.median(raw_times)
    print(f"\n{'daily avg at Europe/Oslo midnight':<44} {'buckets':>7} {'ms':>10}")
    print(f"{f'raw rows ({rows:,})':<44} {len(b):>7,} {w * 1000:>10.1f}")
    print(f"{f'roll-ups ({len(a) and rows // 3600:,} hours)':<44} {len(a):>7,} {r * 1000:>10.1f}")
    print(f"roll-ups are {w / r:,.0f}x faster, answers equal ({len(a)} days)")


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def bench_ingest(total: int) -> None:
    from django.db import connection

    from sensors.ingest import readings_ingest, storage
    from sensors.models import Reading, ReadingHourly, Sensor, Transport
    from sensors.services.partitions import partitions_create

    print(f"\ningest: readings_ingest, JSON messages, {BATCH:,}/batch, {total:,} rows each way, alternating")
    print(f"{'shape':<36} {'with roll-ups':>14} {'without':>10} {'ratio':>7}")
    for sensors in (100, 5000):
        keys = [f"bench.ingest-{sensors}-{n}" for n in range(sensors)]
        for key in keys:
            Sensor.objects.get_or_create(key=key)
        Reading.objects.filter(sensor__key__startswith=f"bench.ingest-{sensors}-").delete()
        ReadingHourly.objects.filter(sensor__key__startswith=f"bench.ingest-{sensors}-").delete()
        per_batch = BATCH // sensors
        batches = []
        moment = datetime(2025, 6, 1, tzinfo=UTC)
        partitions_create(start=moment, end=moment + timedelta(days=60))
        for _ in range(total // BATCH * 2):
            messages = []
            for step in range(per_batch):
                ts = (moment + timedelta(seconds=step)).isoformat()
                messages.extend(
                    json.dumps({"sensor": key, "timestamp": ts, "value": n * 0.1 + step}).encode()
                    for n, key in enumerate(keys)
                )
            batches.append(messages)
            moment += timedelta(seconds=per_batch)
        with_times, without_times = [], []
        real = storage.rollups_add
        for index, messages in enumerate(batches):
            off = index % 2 == 1
            if off:
                storage.rollups_add = lambda stored: 0  # the "without" runs: no roll-up maintenance
            try:
                started = time.perf_counter()
                result = readings_ingest(messages=messages, transport=Transport.STREAM)
                elapsed = time.perf_counter() - started
            finally:
                storage.rollups_add = real
            assert result.stored == len(messages), result
            (without_times if off else with_times).append(elapsed)
        rate_with = BATCH / statistics.median(with_times)
        rate_without = BATCH / statistics.median(without_times)
        label = f"{sensors:,} sensors, {per_batch:,} readings each"
        print(f"{label:<36} {rate_with:>10,.0f} r/s {rate_without:>6,.0f} r/s {rate_with / rate_without:>6.2f}x")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days of 1 Hz data of one sensor (default 365)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each query (default 3)")
    parser.add_argument("--rows", type=int, default=200_000, help="readings per ingest shape and way (default 200,000)")
    parser.add_argument("--parts", default="query,ingest", help="what to measure (default: query,ingest)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    from bench.setup import django_on_scratch_database

    django_on_scratch_database(script="bench/rollups.py", suffix="_bench_rollups")
    from django.db import connection

    version = connection.cursor().connection.info.server_version
    print(f"PostgreSQL {version // 10000}.{version % 10000}")
    if "query" in parts:
        bench_query(args.days, args.repeat)
    if "ingest" in parts:
        bench_ingest(args.rows)


if __name__ == "__main__":
    if not __package__:
        root = Path(__file__).resolve().parent.parent
        sys.exit(subprocess.call([sys.executable, "-m", "bench.rollups", *sys.argv[1:]], cwd=root))
    main()
