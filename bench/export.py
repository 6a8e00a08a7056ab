"""Export memory and speed at growing table sizes: peak RSS of `manage.py export_data` stays flat (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.export \
        [--sizes 100000,1000000,10000000] [--format jsonl]

It works in a separate database, `<DATABASE_URL's name>_export_bench`, on the same server (created and migrated if
missing). For each size, smallest first, it tops the readings table up to that many rows with one server-side
`INSERT … SELECT generate_series` per sensor (10 sensors at 1 Hz, no data crosses the wire; earlier rows are
kept, so the sizes build on each other), plus one detection per 10 readings of the first sensor, a few anomalies
and events. Then it runs `manage.py export_data` in a child process writing to stdout, counts the bytes it
writes through a pipe, and reads the child's own peak RSS from `wait4` (the kernel's ru_maxrss of that process).

A baseline run exports the same sensors with `--since` after the last reading (no series rows): the memory of the
Django process itself. Flat means the peak RSS above that baseline does not grow with the rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.setup import django_on_scratch_database

SENSORS = 10
START = datetime(2024, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def top_up(total: int) -> tuple[int, float]:
    """Make the readings table hold `total` rows (10 sensors, 1 Hz each); return (rows added, seconds)."""
    from django.db import connection

    from detection.models import Anomaly, SensorEvent
    from sensors.models import Platform, Reading, Sensor

    platform, _ = Platform.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    ids = [
        Sensor.objects.get_or_create(key=f"bench.export-{n}", defaults={"platform": platform, "unit": "°C"})[0].id
        for n in range(SENSORS)
    ]
    have = Reading.objects.count()
    started = time.perf_counter()
    per_sensor = total // SENSORS
    with connection.cursor() as cursor:
        for n, sensor_id in enumerate(ids):
            cursor.execute("SELECT count(*) FROM sensors_reading WHERE sensor_id = %s", [sensor_id])
            current = cursor.fetchone()[0]
            if current >= per_sensor:
                continue
            cursor.execute(
                'INSERT INTO sensors_reading (sensor_id, "timestamp", value) '
                "SELECT %s, %s::timestamptz + g * interval '1 second', 20 + 5 * sin(g / 600.0) + %s "
                "FROM generate_series(%s, %s) AS g",
                [sensor_id, START, n, current, per_sensor - 1],
            )
        cursor.execute("SELECT count(*) FROM detection_detection WHERE sensor_id = %s", [ids[0]])
        detections = cursor.fetchone()[0]
        cursor.execute(
            'INSERT INTO detection_detection (sensor_id, "timestamp", level, distance, status) '
            "SELECT %s, %s::timestamptz + g * interval '10 seconds', 40 + (g %% 50), 0.5, 'ok' "
            "FROM generate_series(%s, %s) AS g",
            [ids[0], START, detections, per_sensor // 10 - 1],
        )
        cursor.execute("ANALYZE sensors_reading")
    if not Anomaly.objects.exists():
        for n, sensor_id in enumerate(ids):
            anomaly = Anomaly.objects.create(
                sensor_id=sensor_id,
                started_at=START,
                ended_at=START,
                peak_level=210.0 + n,
                peak_at=START,
                peak_status="critical",
                flagged=3,
            )
            SensorEvent.objects.create(sensor_id=sensor_id, kind="critical", at=START, anomaly=anomaly, message="x")
    return Reading.objects.count() - have, time.perf_counter() - started


def export_run(*, fmt: str, since: str | None = None) -> dict[str, float]:
    """Run export_data in a child process; its bytes, seconds and own peak RSS (MiB)."""
    command = [sys.executable, "manage.py", "export_data", "--format", fmt, "--verbosity", "0"]
    if since:
        command += ["--since", since]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env=os.environ.copy())
    assert child.stdout is not None
    written = 0
    while chunk := child.stdout.read(1 << 20):
        written += len(chunk)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode:
        sys.exit(f"export_data failed with exit code {child.returncode}")
    return {"bytes": written, "seconds": seconds, "rss": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="readings, comma-separated, growing")
    parser.add_argument("--format", default="jsonl", choices=["jsonl", "csv"])
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    django_on_scratch_database(script="bench/export.py", suffix="_export_bench")

    from sensors.models import Reading

    rows = []
    for size in sizes:
        added, seconds = top_up(size)
        total = Reading.objects.count()
        print(f"readings: {total:,} ({added:,} added in {seconds:.0f} s)", flush=True)
        baseline = export_run(fmt=args.format, since="2100-01-01T00:00:00Z")
        run = export_run(fmt=args.format)
        rows.append((total, run, baseline))
        print(
            f"  export {args.format}: {run['seconds']:.1f} s, {total / run['seconds']:,.0f} readings/s, "
            f"{run['bytes'] / 2**20:,.0f} MiB written, peak RSS {run['rss']:.0f} MiB "
            f"(baseline {baseline['rss']:.0f} MiB, +{run['rss'] - baseline['rss']:.0f})",
            flush=True,
        )
    print()
    print("| readings | export time | readings/s | output | peak RSS | baseline RSS (no rows) | above baseline |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for total, run, baseline in rows:
        print(
            f"| {total:,} | {run['seconds']:.1f} s | {total / run['seconds']:,.0f} | {run['bytes'] / 2**20:,.0f} MiB "
            f"| {run['rss']:.0f} MiB | {baseline['rss']:.0f} MiB | {run['rss'] - baseline['rss']:+.0f} MiB |"
        )


if __name__ == "__main__":
    main()
