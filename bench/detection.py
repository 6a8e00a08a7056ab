"""Detection throughput: the detector alone, and the production batch path for 1,000 sensors (SPEC §8).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python -m bench.detection [--sensors 1000] [--seconds 150]
    .venv/bin/python -m bench.detection            # SQLite: var/bench_detection.sqlite3

With a PostgreSQL DATABASE_URL it works in `<name>_bench_detection` next to it (created and migrated if missing);
otherwise in its own SQLite file. Each run starts from empty detection tables and prints:

(a) engine: readings/s through one `engine.Detector` (m = DETECTION_WINDOW, a 14-day baseline), restarts
    included, no database;
(b) production path, 1,000 sensors at 1 reading/s: for each of `--seconds` seconds, every sensor's reading of
    that second is committed (not timed), then `detection.services.detect.readings_detect` runs once over all
    sensors, as the ingest hand-off task would. The first batch (every detector rebuilt from the stored state,
    as in a worker's first batch) is reported apart; the rest gives the sustained readings/s (target ≥ 1,000 on one
    worker). Every sensor's state holds m values beforehand, so each reading gets a level and the timed span
    (≥ m seconds) includes each detector's restart-and-replay;
(c) one pass over 1,000 sensors with one new reading each (the one-reading-a-minute case, target < 10 s):
    warm (detectors kept in memory, the steady state) and cold (`detector_cache_clear()`: a fresh worker).

For (b) and (c) it also prints where the time goes: time inside the database driver (all queries), and the
total time spent in the service's steps (`_states_locked`, `_pending`, `Detector.feed`, `_states_save`, ...),
measured by wrapping them with timers for the run (their behaviour is unchanged).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 144


def setup() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "pgsql://")):
        from bench.setup import django_on_scratch_database

        django_on_scratch_database(script="bench/detection.py", suffix="_bench_detection")
        return "PostgreSQL"
    path = ROOT / "var" / "bench_detection.sqlite3"
    path.parent.mkdir(exist_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    os.environ["DJANGO_DEBUG"] = "False"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return "SQLite"


def normal(n: int, *, seed: int, start: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    return 30 + 8 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 1.5, n)


class QueryTimer:
    """Time spent inside the database driver (a connection execute wrapper), and the number of queries."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1


STEPS: dict[str, float] = {}


def step_timers() -> None:
    """Wrap the batch service's steps so that their total time is known (the figures say where time goes)."""
    import functools

    from detection import engine
    from detection.models import Detection
    from detection.services import detect

    def timed(name, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                STEPS[name] = STEPS.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    for name in ("_states_locked", "_pending", "_states_save", "sensor_events_store", "_detector"):
        setattr(detect, name, timed(name, getattr(detect, name)))
    engine.Detector.feed = timed("Detector.feed", engine.Detector.feed)
    manager = Detection.objects
    manager.bulk_create = timed("Detection bulk_create", manager.bulk_create)


def steps_report(total: float) -> str:
    parts = sorted(STEPS.items(), key=lambda item: -item[1])
    STEPS.clear()
    return "; ".join(f"{name} {seconds:.2f} s ({seconds / total:.0%})" for name, seconds in parts)


@contextmanager
def timed_queries():
    from django.db import connection

    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        yield timer


def bench_engine(m: int, points: int) -> float:
    from detection import engine

    detector = engine.detector_for(normal(14 * DAY, seed=1), m, warning=100, critical=200)
    values = normal(points, seed=2, start=14 * DAY)
    started = time.perf_counter()
    for value in values:
        detector.feed(value)
    return points / (time.perf_counter() - started)


def prepare(sensors: int, seconds: int, m: int) -> list[int]:
    """Fresh tables; `sensors` sensors on the default seed, each state holding m values; the `seconds` + 2
    values of each sensor to come (the last two for the single passes of (c))."""
    from django.conf import settings
    from django.db import transaction

    from detection.models import (
        Anomaly,
        Baseline,
        Detection,
        DetectorSettings,
        DetectorState,
        SensorEvent,
        array_to_bytes,
    )
    from detection.services.baselines import baseline_create
    from sensors.models import Reading, Sensor

    keys = [f"bench-detect-{n:04d}" for n in range(sensors)]
    with transaction.atomic():
        for model in (SensorEvent, Anomaly, Detection, DetectorState, DetectorSettings):
            model.objects.all().delete()
        Reading.objects.filter(sensor__key__startswith="bench-detect-").delete()
        Sensor.objects.filter(key__startswith="bench-detect-").exclude(key__in=keys).delete()
        existing = set(Sensor.objects.filter(key__in=keys).values_list("key", flat=True))
        Sensor.objects.bulk_create([Sensor(key=key) for key in keys if key not in existing])
        ids = list(Sensor.objects.filter(key__in=keys).order_by("key").values_list("pk", flat=True))
        seed = Baseline.objects.filter(name=settings.DETECTION_DEFAULT_SEED).first()
        if seed is None:
            seed = baseline_create(
                name=settings.DETECTION_DEFAULT_SEED, kind=Baseline.Kind.SEED, values=normal(14 * DAY, seed=1), window=m
            )
        defaults = DetectorSettings.defaults()
        DetectorSettings.objects.bulk_create([DetectorSettings(sensor_id=pk, **defaults) for pk in ids])
        # Each sensor has been running: m values in its state (so every reading gets a level from the start).
        DetectorState.objects.bulk_create(
            [
                DetectorState(
                    sensor_id=pk,
                    baseline=seed,
                    window=m,
                    values=array_to_bytes(normal(m, seed=pk, start=0)),
                    fed=m,
                    last_timestamp=START - timedelta(seconds=1),
                )
                for pk in ids
            ]
        )
    series = {pk: normal(seconds + 2, seed=10_000 + pk, start=m) for pk in ids}
    return ids, series


def store_second(ids: list[int], series: dict[int, np.ndarray], second: int) -> None:
    """Second `second`'s reading of every sensor, committed as the ingestion service would (not timed): the
    hand-off's task detects everything from the earliest new timestamp on, so readings must arrive in time."""
    from django.db import connection, transaction

    from sensors.models import Reading

    at = START + timedelta(seconds=second)
    rows = [(pk, at, float(series[pk][second])) for pk in ids]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                copy_sql = 'COPY sensors_reading (sensor_id, "timestamp", value) FROM STDIN (FORMAT BINARY)'
                with cursor.cursor.copy(copy_sql) as copy:
                    copy.set_types(["int8", "timestamptz", "float8"])
                    for row in rows:
                        copy.write_row(row)
        else:
            Reading.objects.bulk_create(Reading(sensor_id=pk, timestamp=ts, value=v) for pk, ts, v in rows)


def detect_second(ids: list[int], series: dict[int, np.ndarray], second: int):
    from detection.services.detect import readings_detect

    store_second(ids, series, second)
    at = START + timedelta(seconds=second)
    with timed_queries() as timer:
        started = time.perf_counter()
        result = readings_detect(sensors=dict.fromkeys(ids, at))
        elapsed = time.perf_counter() - started
    return elapsed, timer, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=150, help="seconds of 1 Hz data in (b) (default 150 > m)")
    parser.add_argument("--engine-points", type=int, default=20_000)
    args = parser.parse_args()
    vendor = setup()

    from django.conf import settings

    from detection import engine
    from detection.services.detect import detector_cache_clear

    m = settings.DETECTION_WINDOW
    started = time.perf_counter()
    engine.warm()
    print(f"{vendor}; m={m}; stumpy warm-up {time.perf_counter() - started:.1f} s; layer {settings.CHANNEL_LAYERS}")

    rate = bench_engine(m, args.engine_points)
    print(f"(a) engine: one detector, {args.engine_points:,} readings: {rate:,.0f} readings/s")

    ids, series = prepare(args.sensors, args.seconds, m)
    step_timers()
    detector_cache_clear()
    first, first_timer, first_result = detect_second(ids, series, 0)
    assert first_result.detected == len(ids), first_result
    print(
        f"(b) first batch (detectors rebuilt from stored state): {len(ids):,} readings in {first:.2f} s "
        f"({first_timer.queries} queries, {first_timer.seconds:.2f} s in the database)"
    )
    print(f"    steps: {steps_report(first)}")
    timings, db_seconds, queries = [], 0.0, 0
    for second in range(1, args.seconds):
        elapsed, timer, result = detect_second(ids, series, second)
        assert result.detected == len(ids), result
        timings.append(elapsed)
        db_seconds += timer.seconds
        queries += timer.queries
    total = sum(timings)
    readings = len(ids) * len(timings)
    print(
        f"(b) sustained: {readings:,} readings in {len(timings)} batches of {len(ids):,}: {total:.1f} s, "
        f"{readings / total:,.0f} readings/s (target >= 1,000); batch median {statistics.median(timings):.2f} s, "
        f"max {max(timings):.2f} s; database {db_seconds:.1f} s ({db_seconds / total:.0%}), "
        f"{queries / len(timings):.0f} queries a batch; the rest (detectors, Python) {total - db_seconds:.1f} s"
    )
    print(f"    steps: {steps_report(total)}")

    warm, warm_timer, _ = detect_second(ids, series, args.seconds)
    print(
        f"(c) one pass, {len(ids):,} sensors x 1 reading, warm detectors: {warm:.2f} s (target < 10 s; "
        f"database {warm_timer.seconds:.2f} s, {warm_timer.queries} queries)"
    )
    print(f"    steps: {steps_report(warm)}")
    detector_cache_clear()
    cold, cold_timer, _ = detect_second(ids, series, args.seconds + 1)
    print(
        f"(c) one pass, {len(ids):,} sensors x 1 reading, cold (fresh worker): {cold:.2f} s (target < 10 s; "
        f"database {cold_timer.seconds:.2f} s, {cold_timer.queries} queries)"
    )
    print(f"    steps: {steps_report(cold)}")


if __name__ == "__main__":
    sys.exit(main())
