"""Detection throughput: the production batch path for 1,000 sensors against the bare numerical work
(docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \
        .venv/bin/python -m bench.detection [--method discord|baseline] [--sensors 1000] [--batches 30] \
        [--per-sensor 10]
    .venv/bin/python -m bench.detection            # SQLite: var/bench_detection.sqlite3

With a PostgreSQL DATABASE_URL it works in `<name>_bench_detection` next to it (created and migrated if missing);
otherwise in its own SQLite file. Each run starts from empty detection tables. `--method` is the sensors' detection
method: `discord` (the default for new sensors; each state starts from a detector that has seen 1,200 readings, so
its learning is over and every part defined) or `baseline` (the 14-day default seed, m values in each state). It prints:

(a) bare numerical work: the same readings, in the same batches, fed to one detector object per sensor (built
    from the same state), no database: `DiscordDetector.feed_arrays` per sensor and batch, or `Detector.feed` per
    reading;
(b) production path: for each of `--batches` batches, every sensor's `--per-sensor` readings of that second
    (readings 1/`--per-sensor` s apart) are committed (not timed), then `detection.services.detect.readings_detect`
    runs once over all sensors, as the ingest hand-off task would. The first batch (every detector rebuilt from
    its stored state, a worker's first batch) is reported apart; the rest gives the sustained readings/s and its
    ratio to (a);
(c) one pass over all sensors with one new reading each: warm (detectors kept in memory) and cold
    (`detector_cache_clear()`: a fresh worker, every detector rebuilt; target < 10 s).

For (b) and (c) it also prints where the time goes: time inside the database driver (queries through Django's
cursor; COPY is timed by its step only), and the total time of the service's steps (`_states_locked`, `_pending`,
the detectors' numerical work, `_detections_insert`, `_states_save`, the broadcast, ...), measured by wrapping them
with timers for the run (their behaviour is unchanged). The rest is the service's own Python.
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

from sensors.synthetic.signals import POINTS_PER_DAY, sine_day

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = POINTS_PER_DAY
WARM_READINGS = (
    1200  # what a discord state has seen beforehand: past its learning, every part defined (the day part from ~820)
)


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
    return 30 + 8 * sine_day(t) + rng.normal(0, 1.5, n)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


def _timed(name, function):
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            STEPS[name] = STEPS.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def step_timers() -> None:
    """Wrap the batch service's steps so that their total time is known (the figures say where time goes)."""
    from detection import discord, engine
    from detection.services import detect

    for name in (
        "_states_locked",
        "_states_arrays_fetch",
        "_pending",
        "_states_save",
        "_detections_insert",
        "sensor_events_store",
        "detector_take",
        "detections_broadcast",
    ):
        if hasattr(detect, name):
            setattr(detect, name, _timed(name, getattr(detect, name)))
    from django.db import connection

    detect.detector_settings_ensure = _timed("detector_settings_ensure", detect.detector_settings_ensure)
    # deferred foreign-key checks run in this private method, which the stubs leave out
    connection._commit = _timed("commit", connection._commit)  # type: ignore[attr-defined]
    engine.Detector.feed = _timed("Detector.feed", engine.Detector.feed)
    discord.DiscordDetector.feed_arrays = _timed("DiscordDetector.feed_arrays", discord.DiscordDetector.feed_arrays)
    discord.DiscordDetector.state_vector = _timed("DiscordDetector.state_vector", discord.DiscordDetector.state_vector)


def steps_report(total: float) -> str:
    parts = sorted(STEPS.items(), key=lambda item: -item[1])
    STEPS.clear()
    named = sum(seconds for _, seconds in parts)  # no timed step calls another
    text = "; ".join(f"{name} {seconds:.2f} s ({seconds / total:.0%})" for name, seconds in parts)
    return f"{text}; the rest {total - named:.2f} s ({(total - named) / total:.0%})"


@contextmanager
def timed_queries():
    from django.db import connection

    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        yield timer


class Workload:
    """The sensors, their first state, and the readings each batch brings (value and epoch seconds per sensor)."""

    def __init__(self, *, method: str, sensors: int, batches: int, per_sensor: int) -> None:
        self.method, self.per_sensor, self.batches = method, per_sensor, batches
        self.count = sensors
        self.step = 1.0 / per_sensor
        self.ids: list[int] = []
        # Two more batches of one reading each for (c).
        self.points = batches * per_sensor + 2

    def series(self, pk: int) -> np.ndarray:
        return normal(self.points, seed=10_000 + pk, start=WARM_READINGS)

    def batch(self, index: int) -> tuple[slice, np.ndarray]:
        """The positions in each sensor's series of batch `index`, and their epoch seconds."""
        if index < self.batches:
            where = slice(index * self.per_sensor, (index + 1) * self.per_sensor)
        else:
            position = self.batches * self.per_sensor + (index - self.batches)
            where = slice(position, position + 1)
        stamps = START.timestamp() + np.arange(where.start, where.stop) * self.step
        return where, stamps


def discord_template(window: int, step: float) -> np.ndarray:
    """The state vector of a discord detector that has seen WARM_READINGS readings, `step` seconds apart, the last
    just before START (all sensors start from it; their new readings differ)."""
    from django.conf import settings

    from detection import discord

    detector = discord.DiscordDetector(window, learning=settings.DETECTION_DISCORD_LEARNING)
    stamps = START.timestamp() - np.arange(WARM_READINGS, 0, -1) * step
    detector.feed_arrays(normal(WARM_READINGS, seed=1), stamps)
    return detector.state_vector()


def prepare(work: Workload, m: int) -> dict:
    """Fresh tables; the sensors with their settings and states (see the module docstring). Returns what (a)
    needs to build the same detectors without the database."""
    from django.conf import settings
    from django.db import transaction

    from detection.models import (
        Anomaly,
        Baseline,
        Detection,
        DetectorSettings,
        DetectorState,
        Method,
        SensorEvent,
        array_to_bytes,
    )
    from detection.services.baselines import baseline_create
    from sensors.models import Reading, Sensor

    keys = [f"bench-detect-{n:04d}" for n in range(work.count)]
    with transaction.atomic():
        for model in (SensorEvent, Anomaly, Detection, DetectorState, DetectorSettings):
            model.objects.all().delete()
        Reading.objects.filter(sensor__key__startswith="bench-detect-").delete()
        Sensor.objects.filter(key__startswith="bench-detect-").exclude(key__in=keys).delete()
        existing = set(Sensor.objects.filter(key__in=keys).values_list("key", flat=True))
        Sensor.objects.bulk_create([Sensor(key=key) for key in keys if key not in existing])
        work.ids = list(Sensor.objects.filter(key__in=keys).order_by("key").values_list("pk", flat=True))
        defaults = DetectorSettings.defaults()
        if work.method == Method.DISCORD:
            defaults.update(method=Method.DISCORD, window=settings.DETECTION_DISCORD_WINDOW)
            vector = discord_template(defaults["window"], work.step)
            seed, values = None, vector  # the vector's own layout is the detector's business: only stored here
            states = [
                DetectorState(
                    sensor_id=pk,
                    method=Method.DISCORD,
                    window=defaults["window"],
                    method_state=array_to_bytes(vector),
                    values=b"",
                    fed=WARM_READINGS,
                    last_timestamp=START - timedelta(seconds=work.step),
                )
                for pk in work.ids
            ]
        else:
            defaults.update(method=Method.BASELINE, window=m)
            seed = Baseline.objects.filter(name=settings.DETECTION_DEFAULT_SEED).first()
            if seed is None:
                seed = baseline_create(
                    name=settings.DETECTION_DEFAULT_SEED,
                    kind=Baseline.Kind.SEED,
                    values=normal(14 * DAY, seed=1),
                    window=m,
                )
            values = None
            states = [
                DetectorState(
                    sensor_id=pk,
                    method=Method.BASELINE,
                    baseline=seed,
                    window=m,
                    values=array_to_bytes(normal(m, seed=pk, start=0)),
                    fed=m,
                    last_timestamp=START - timedelta(seconds=work.step),
                )
                for pk in work.ids
            ]
        DetectorSettings.objects.bulk_create([DetectorSettings(sensor_id=pk, **defaults) for pk in work.ids])
        DetectorState.objects.bulk_create(states)
    return {"defaults": defaults, "seed": seed, "vector": values}


def bare(work: Workload, prepared: dict) -> tuple[float, float]:
    """(a): seconds to feed the batches of (b) after its first to one detector per sensor, no database; and the
    seconds to build those detectors from their states (what a cold pass must at least do)."""
    from django.conf import settings

    from detection import discord, engine
    from detection.models import Method
    from detection.services.detector_cache import baseline_seeded

    defaults = prepared["defaults"]
    started = time.perf_counter()
    if work.method == Method.DISCORD:
        learning = settings.DETECTION_DISCORD_LEARNING
        detectors = {
            pk: discord.DiscordDetector.from_vector(defaults["window"], prepared["vector"].copy(), learning=learning)
            for pk in work.ids
        }
    else:
        seeded = baseline_seeded(prepared["seed"], defaults["window"])
        detectors = {
            pk: engine.Detector.resume(seeded, normal(defaults["window"], seed=pk, start=0), warning=0, critical=0)
            for pk in work.ids
        }
    build = time.perf_counter() - started
    series = {pk: work.series(pk) for pk in work.ids}
    where, stamps = work.batch(0)
    for pk, detector in detectors.items():  # the first batch, as in (b), not timed
        _bare_feed(detector, series[pk][where], stamps)
    seconds = 0.0
    for index in range(1, work.batches):
        where, stamps = work.batch(index)
        started = time.perf_counter()
        for pk, detector in detectors.items():
            _bare_feed(detector, series[pk][where], stamps)
        seconds += time.perf_counter() - started
    return seconds, build


def _bare_feed(detector, values: np.ndarray, stamps: np.ndarray) -> None:
    from detection import discord

    if isinstance(detector, discord.DiscordDetector):
        detector.feed_arrays(values, stamps)
    else:
        for value in values:
            detector.feed(value)


def store_batch(work: Workload, series: dict[int, np.ndarray], index: int) -> datetime:
    """Batch `index`'s readings of every sensor, committed as the ingestion service would (not timed). Returns
    the earliest new timestamp (what the hand-off names)."""
    from django.db import connection, transaction

    from sensors.models import Reading

    where, stamps = work.batch(index)
    times = [datetime.fromtimestamp(stamp, UTC) for stamp in stamps]
    rows = [(pk, at, float(value)) for pk in work.ids for at, value in zip(times, series[pk][where], strict=True)]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            from common.db import copy_rows

            with connection.cursor() as cursor:
                copy_rows(
                    cursor,
                    Reading._meta.db_table,
                    ["sensor_id", '"timestamp"', "value"],
                    rows,
                    types=["int8", "timestamptz", "float8"],
                )
        else:
            Reading.objects.bulk_create(Reading(sensor_id=pk, timestamp=ts, value=v) for pk, ts, v in rows)
    return times[0]


def detect_batch(work: Workload, series: dict[int, np.ndarray], index: int):
    from detection.services.detect import readings_detect

    at = store_batch(work, series, index)
    with timed_queries() as timer:
        started = time.perf_counter()
        result = readings_detect(sensors=dict.fromkeys(work.ids, at))
        elapsed = time.perf_counter() - started
    where, _ = work.batch(index)
    expected = len(work.ids) * (where.stop - where.start)
    assert result.detected == expected, result
    assert not result.failed, result
    return elapsed, timer, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["discord", "baseline"], default="discord")
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=30, help="batches in (b), the first included (default 30)")
    parser.add_argument("--per-sensor", type=int, default=10, help="readings per sensor per batch (default 10)")
    args = parser.parse_args()
    vendor = setup()

    from django.conf import settings

    from detection import engine
    from detection.services.detector_cache import detector_cache_clear

    m = settings.DETECTION_WINDOW
    started = time.perf_counter()
    engine.warm()  # stumpy's and the discord method's compiled functions
    print(
        f"{vendor}; method {args.method}; {args.sensors:,} sensors x {args.per_sensor} readings a batch; "
        f"warm-up {time.perf_counter() - started:.1f} s; load average {load_average()}"
    )

    work = Workload(method=args.method, sensors=args.sensors, batches=args.batches, per_sensor=args.per_sensor)
    prepared = prepare(work, m)
    series = {pk: work.series(pk) for pk in work.ids}
    bare_seconds, bare_build = bare(work, prepared)
    bare_readings = len(work.ids) * args.per_sensor * (args.batches - 1)
    print(
        f"(a) bare numerical work, no database: {bare_readings:,} readings in {bare_seconds:.2f} s, "
        f"{bare_readings / bare_seconds:,.0f} readings/s; building the {len(work.ids):,} detectors from their "
        f"states {bare_build:.2f} s; load average {load_average()}"
    )

    step_timers()
    detector_cache_clear()
    first, first_timer, _ = detect_batch(work, series, 0)
    print(
        f"(b) first batch (detectors rebuilt from stored state): {len(work.ids) * args.per_sensor:,} readings in "
        f"{first:.2f} s ({first_timer.queries} queries, {first_timer.seconds:.2f} s in the database)"
    )
    print(f"    steps: {steps_report(first)}")
    timings, db_seconds, queries = [], 0.0, 0
    for index in range(1, args.batches):
        elapsed, timer, _ = detect_batch(work, series, index)
        timings.append(elapsed)
        db_seconds += timer.seconds
        queries += timer.queries
    total = sum(timings)
    readings = len(work.ids) * args.per_sensor * len(timings)
    print(
        f"(b) sustained: {readings:,} readings in {len(timings)} batches of {len(work.ids) * args.per_sensor:,}: "
        f"{total:.2f} s, {readings / total:,.0f} readings/s (target >= 10,000); "
        f"{total / bare_seconds:.1f} x the bare numerical work (a); batch median {statistics.median(timings):.3f} s, "
        f"max {max(timings):.3f} s; database driver {db_seconds:.2f} s ({db_seconds / total:.0%}), "
        f"{queries / len(timings):.1f} queries a batch; load average {load_average()}"
    )
    print(f"    steps: {steps_report(total)}")

    warm, warm_timer, _ = detect_batch(work, series, args.batches)
    print(
        f"(c) one pass, {len(work.ids):,} sensors x 1 reading, warm detectors: {warm:.2f} s "
        f"(database driver {warm_timer.seconds:.2f} s, {warm_timer.queries} queries)"
    )
    print(f"    steps: {steps_report(warm)}")
    detector_cache_clear()
    cold, cold_timer, _ = detect_batch(work, series, args.batches + 1)
    print(
        f"(c) one pass, {len(work.ids):,} sensors x 1 reading, cold (fresh worker): {cold:.2f} s (target < 10 s; "
        f"database driver {cold_timer.seconds:.2f} s, {cold_timer.queries} queries); load average {load_average()}"
    )
    print(f"    steps: {steps_report(cold)}")


if __name__ == "__main__":
    sys.exit(main())
