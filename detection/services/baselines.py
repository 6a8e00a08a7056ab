"""Baselines: creating them, loading the seeds, building one from a sensor's first readings, and the two jobs that
keep each sensor's baseline fitting it: selection (which seed) and augmentation (its own cleaned history).

Baselines are never changed in place (workers cache seeded detectors by baseline id): building, augmenting and
replacing a seed all make a new row, and pointing a sensor's settings at another baseline restarts its detector at
its next batch (the detection service sees that the active baseline changed and replays the last m values).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from common.exceptions import ApplicationError
from detection import engine
from detection.models import Anomaly, Baseline, DetectorSettings, JobRun, SystemEvent, array_to_bytes
from detection.services.detect import default_seed_id, detector_settings_ensure
from detection.services.events import system_event_emit
from sensors.models import Reading, Sensor

SEEDS_FILE = Path(__file__).resolve().parent.parent / "data" / "seeds.json"
SEEDS_FORMAT = "sensorhub-baselines/1"

# progress(current, total, description): celery-progress's ProgressRecorder.set_progress, or nothing.
Progress = Callable[[int, int, str], None]


def _no_progress(current: int, total: int, description: str) -> None:
    return


def baseline_create(
    *,
    name: str,
    kind: str,
    values: np.ndarray,
    window: int,
    sensor: Sensor | None = None,
    parent: Baseline | None = None,
    description: str = "",
    joins: list[int] | tuple[int, ...] = (),
) -> Baseline:
    """Store a baseline with its mean, variance and max distance for `window`; raises `engine.SeriesError`
    for a series that is too short (< 2m), not finite or constant. `joins`: where the series was pieced together
    (windows across them do not count towards the max distance, see `engine.baseline_stats`)."""
    series = engine.as_series(values)
    joins = sorted({int(j) for j in joins if 0 < j < len(series)})
    stats = engine.baseline_stats(series, window, joins)
    return Baseline.objects.create(
        name=name,
        kind=kind,
        sensor=sensor,
        parent=parent,
        window=window,
        values=array_to_bytes(series),
        points=len(series),
        joins=joins,
        description=description,
        **stats,
    )


def _sensor_baseline_name(sensor: Sensor, kind: str, now: datetime) -> str:
    # Unique (the column is) and readable in the admin: the key, the kind and the moment to the microsecond.
    return f"{sensor.key[:60]}-{kind}-{now:%Y%m%d-%H%M%S-%f}"


# --- seeds ------------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def _seeds_read(path: Path) -> list[dict[str, Any]]:
    """The file's baselines, checked for shape; ApplicationError (one line) on anything else."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ApplicationError(f"No such file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"Cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ApplicationError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SEEDS_FORMAT or not isinstance(data.get("baselines"), list):
        raise ApplicationError(f'{path}: expected {{"format": "{SEEDS_FORMAT}", "baselines": [...]}}')
    entries, names = [], set()
    for number, entry in enumerate(data["baselines"], start=1):
        where = f"{path}: baseline {number}"
        if not isinstance(entry, dict):
            raise ApplicationError(f"{where} is not an object")
        name, window, values = entry.get("name"), entry.get("window"), entry.get("values")
        if not isinstance(name, str) or not name or len(name) > 100:
            raise ApplicationError(f"{where}: 'name' must be a string of 1-100 characters")
        if name in names:
            raise ApplicationError(f"{where}: the name {name!r} appears twice")
        names.add(name)
        if not isinstance(window, int) or isinstance(window, bool):
            raise ApplicationError(f"{where} ({name}): 'window' must be an integer")
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise ApplicationError(f"{where} ({name}): 'values' must be a list of finite numbers")
        try:
            engine.baseline_check(np.asarray(values, dtype=np.float64), window)
        except engine.SeriesError as exc:
            raise ApplicationError(f"{where} ({name}): {exc}") from exc
        if min(values) == max(values):
            # A sensor's own constant readings make a baseline (any change is then critical); a seed is meant to
            # describe normal variation for sensors that have none of their own, so a constant one is a mistake.
            raise ApplicationError(f"{where} ({name}): a seed must vary; every value is {values[0]!r}")
        entries.append(
            {"name": name, "window": window, "values": values, "description": str(entry.get("description", ""))}
        )
    if not entries:
        raise ApplicationError(f"{path}: no baselines in the file")
    return entries


@transaction.atomic
def baselines_load(*, path: Path = SEEDS_FILE, replace: bool = False) -> LoadResult:
    """Load the seed baselines of `path` (the shipped `detection/data/seeds.json` by default) through
    `baseline_create`, so their stats are computed here, never taken from the file.

    Idempotent: a seed already stored with the same window and values is left as it is. A seed of that name with
    other values or window is refused (ApplicationError, nothing loaded) unless `replace`: then the old row is
    deleted and a new one made (never changed in place: workers cache detectors by baseline id), and the sensors
    whose settings named the old one name the new one, so their detectors restart from it.
    """
    result = LoadResult()
    entries = _seeds_read(path)
    existing = {b.name: b for b in Baseline.objects.filter(name__in=[e["name"] for e in entries])}
    for entry in entries:
        old = existing.get(entry["name"])
        if old is not None and old.kind != Baseline.Kind.SEED:
            raise ApplicationError(f"{entry['name']!r} names a {old.kind} baseline of a sensor, not a seed")
        values = np.asarray(entry["values"], dtype=np.float64)
        if old is not None and old.window == entry["window"] and np.array_equal(old.array(), values):
            result.unchanged.append(old.name)
            continue
        if old is not None and not replace:
            raise ApplicationError(
                f"The seed {old.name!r} is stored with other values or window; use --replace to replace it"
            )
        users = []
        if old is not None:
            users = list(DetectorSettings.objects.filter(baseline=old).values_list("pk", flat=True))
            old.delete()
        try:
            new = baseline_create(
                name=entry["name"],
                kind=Baseline.Kind.SEED,
                values=values,
                window=entry["window"],
                description=entry["description"],
            )
        except engine.SeriesError as exc:
            raise ApplicationError(f"{path}: {entry['name']}: {exc}") from exc
        if old is not None:
            DetectorSettings.objects.filter(pk__in=users).update(baseline=new)
            result.replaced.append(new.name)
        else:
            result.created.append(new.name)
    return result


# --- built from a sensor's first readings ---------------------------------------------------------------------------


@transaction.atomic
def baseline_build(*, sensor: Sensor, points: int, window: int | None = None) -> Baseline:
    """A `built` baseline from the sensor's first `points` readings (oldest first), cleaned, set as its settings'
    baseline (its detector restarts from it at its next batch). `window` (m) defaults to the sensor's setting; it
    is the window the readings are cleaned with and the max distance computed for (the settings keep theirs).

    ApplicationError when `points` or `window` is not sensible, or when the sensor has fewer than 2m readings.
    Cleaning never leaves fewer than 2m: discords whose removal would are left in, and the description says so.
    """
    config = detector_settings_ensure([sensor.pk])[sensor.pk]
    m = window if window is not None else config.window
    if m < 4:
        raise ApplicationError("The window m must be at least 4.", fields={"window": [f"{m} is below 4."]})
    if points < 1:
        raise ApplicationError("points must be a positive number.", fields={"points": [f"{points} is not positive."]})
    values = list(Reading.objects.filter(sensor=sensor).order_by("timestamp").values_list("value", flat=True)[:points])
    need = engine.min_baseline_points(m)
    if len(values) < need:
        raise ApplicationError(
            f"Sensor {sensor.key}: {len(values)} readings to use; building a baseline needs at least 2m={need}.",
            fields={"points": [f"{len(values)} readings, at least {need} needed."]},
        )
    try:
        cleaned = engine.clean(values, m, rule=settings.DETECTION_CLEANING, keep=need)
    except engine.SeriesError as exc:
        raise ApplicationError(f"Sensor {sensor.key}: {exc}.") from exc
    left_in = (
        f"; {cleaned.left_in} discord(s) above the accepted distance left in, to keep 2m={need} points (use more "
        "points to have them removed)"
        if cleaned.left_in
        else ""
    )
    now = timezone.now()
    try:
        baseline = baseline_create(
            name=_sensor_baseline_name(sensor, "built", now),
            kind=Baseline.Kind.BUILT,
            values=cleaned.values,
            joins=cleaned.joins,
            window=m,
            sensor=sensor,
            description=f"The first {len(values)} readings of {sensor.key}, {len(cleaned.values)} left after "
            f"cleaning with m={m}{left_in}.",
        )
    except engine.SeriesError as exc:
        raise ApplicationError(f"Sensor {sensor.key}: {exc}.") from exc
    DetectorSettings.objects.filter(pk=sensor.pk).update(baseline=baseline, updated_at=now)
    return baseline


# --- the jobs: selection and augmentation ----------------------------------------------------------------------------


@dataclass
class JobResult:
    """What a job did, sensor by sensor (`outcomes`: one dict each, `sensor` and `outcome` always set)."""

    job: str
    job_run: int | None = None
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome["outcome"]] = counts.get(outcome["outcome"], 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}


def _job_sensors(sensor_ids: list[int] | None) -> list[Sensor]:
    """The sensors a job covers: the given ones, or every detection-enabled sensor that has detector settings."""
    query = Sensor.objects.filter(detection_enabled=True)
    query = query.filter(detector__isnull=False) if sensor_ids is None else query.filter(pk__in=sensor_ids)
    return list(query.order_by("key"))


def _job_run(
    job: str,
    fn: Callable[[Sensor, DetectorSettings], dict[str, Any]],
    *,
    sensor_ids: list[int] | None,
    progress: Progress,
    task_id: str,
) -> JobResult:
    """Run `fn(sensor, config)` for each sensor with a JobRun row around it (committed at start, so a running or
    crashed job is visible). A failure of the job itself marks the run failed, emits `alert_critical` with the
    error, and is raised again; a sensor whose data cannot be used is one outcome, not a failure."""
    label = JobRun.Job(job).label
    run = JobRun.objects.create(job=job, task_id=task_id or "", started_at=timezone.now())
    result = JobResult(job=job, job_run=run.pk)
    try:
        sensors = _job_sensors(sensor_ids)
        configs = detector_settings_ensure([s.pk for s in sensors])
        for index, sensor in enumerate(sensors):
            progress(index, len(sensors), f"{label}: {sensor.key}")
            try:
                with transaction.atomic():
                    outcome = fn(sensor, configs[sensor.pk])
            except engine.SeriesError as exc:
                # This sensor's data cannot make a baseline (constant, say): the others still get their turn.
                outcome = {"outcome": "error", "error": str(exc)}
                system_event_emit(
                    kind=SystemEvent.Kind.ALERT_CRITICAL,
                    job=job,
                    sensor=sensor,
                    message=f"{label}: {sensor.key} failed: {exc}.",
                    data={"job_run": run.pk},
                )
            result.outcomes.append({"sensor": sensor.key, **outcome})
        progress(len(sensors), len(sensors), f"{label}: {len(sensors)} sensors done")
    except Exception as exc:
        run.finished_at, run.outcome = timezone.now(), JobRun.Outcome.FAILED
        run.sensors, run.summary = len(result.outcomes), result.as_dict()
        run.error = f"{type(exc).__name__}: {exc}"
        run.save(update_fields=["finished_at", "outcome", "sensors", "summary", "error"])
        system_event_emit(
            kind=SystemEvent.Kind.ALERT_CRITICAL,
            job=job,
            message=f"{label} failed: {run.error}",
            data={"job_run": run.pk},
        )
        raise
    run.finished_at, run.outcome = timezone.now(), JobRun.Outcome.SUCCEEDED
    run.sensors, run.summary = len(result.outcomes), result.as_dict()
    run.save(update_fields=["finished_at", "outcome", "sensors", "summary"])
    return result


def _history(sensor: Sensor, *, since: datetime | None, limit: int) -> np.ndarray:
    """The sensor's values after `since`, oldest first, at most the newest `limit`, leaving out the readings inside
    its anomalies (known abnormal behaviour is not a baseline, whatever operators decided about it)."""
    inside_anomaly = Anomaly.objects.filter(
        sensor=sensor, started_at__lte=OuterRef("timestamp"), ended_at__gte=OuterRef("timestamp")
    )
    query = Reading.objects.filter(sensor=sensor).exclude(Exists(inside_anomaly))  # one query, however many
    if since is not None:
        query = query.filter(timestamp__gt=since)
    newest = list(query.order_by("-timestamp").values_list("value", flat=True)[:limit])
    return np.asarray(newest[::-1], dtype=np.float64)


def _cleaned(sensor: Sensor, values: np.ndarray, m: int, job: str) -> engine.Cleaned | dict[str, Any]:
    """The cleaning's result, or the `skipped` outcome after an `info` event when fewer than m remain."""
    reason = None
    if len(values) < m:
        reason = f"{len(values)} readings to use, fewer than m={m}"
    else:
        cleaned = engine.clean(values, m, rule=settings.DETECTION_CLEANING)
        if len(cleaned.values) < m:
            reason = f"{len(cleaned.values)} of {len(values)} readings left after cleaning, fewer than m={m}"
    if reason is None:
        return cleaned
    label = JobRun.Job(job).label
    system_event_emit(
        kind=SystemEvent.Kind.INFO, job=job, sensor=sensor, message=f"{label} skipped {sensor.key}: {reason}."
    )
    return {"outcome": "skipped", "reason": reason, "points": len(values)}


def _first_flag(baseline: Baseline, cleaned: engine.Cleaned, config: DetectorSettings) -> int | None:
    """Which of the cleaned values (1-based) a fresh detector on `baseline`, with the sensor's window and levels,
    flags first (warning or critical), or None. It stops there: one flag refuses a baseline, the rest would cost
    time. Windows across a cut of the cleaning are not judged: they join moments that never followed each other."""
    m = config.window
    detector = engine.detector_for(
        baseline.array(),
        m,
        warning=config.warning_level,
        critical=config.critical_level,
        max_distance=baseline.max_distance if baseline.window == m else None,
        joins=baseline.joins,
    )
    for index, value in enumerate(cleaned.values):
        flagged = detector.feed(value).status in ("warning", "critical")
        if flagged and not engine.crosses_join(index, m, cleaned.joins):
            return index + 1
    return None


def stats_distance(mean: float, variance: float, baseline: Baseline) -> float:
    """How far a series with (mean, variance) is from a baseline: sqrt((Δ mean)² + (Δ standard deviation)²), the
    2-Wasserstein distance between the two normal distributions with those moments. Both terms are in the
    readings' unit, so neither dominates by scale alone, as the variance (in squared units) would."""
    return math.hypot(mean - baseline.mean, math.sqrt(variance) - math.sqrt(baseline.variance))


def _figure(value: float) -> float:
    """Six significant digits: readable in a summary at any scale (a fixed number of decimals is 0.0 for readings
    around 1e-3 and noise for readings around 1e6)."""
    return float(f"{value:.6g}")


def _current_baseline(config: DetectorSettings) -> Baseline | None:
    baseline_id = config.baseline_id or default_seed_id()
    return Baseline.objects.filter(pk=baseline_id).first() if baseline_id else None


def _select_one(sensor: Sensor, config: DetectorSettings, *, now: datetime) -> dict[str, Any]:
    job = JobRun.Job.SELECT_BASELINES
    values = _history(sensor, since=config.last_selection_at, limit=settings.DETECTION_SELECTION_MAX_POINTS)
    result = _cleaned(sensor, values, config.window, job)
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_selection_at=now)
    if not isinstance(result, engine.Cleaned):
        return result  # skipped
    cleaned = result.values
    current = _current_baseline(config)
    mean, variance = float(cleaned.mean()), float(cleaned.var())
    common: dict[str, Any] = {
        "points": len(values),
        "cleaned": len(cleaned),
        "mean": _figure(mean),
        "variance": _figure(variance),
    }
    # A sensor on a baseline of its own (built or augmented from its readings) keeps it while it fits: its own
    # history describes it better than a generic seed. Only when it raises warnings is a seed chosen instead.
    if current is not None and current.kind != Baseline.Kind.SEED:
        flagged = _first_flag(current, result, config)
        if flagged is None:
            system_event_emit(
                kind=SystemEvent.Kind.ALERT_SUCCESS,
                job=job,
                sensor=sensor,
                message=f"Baseline selection: {sensor.key} keeps its own baseline {current.name} (no warning on "
                f"{len(cleaned)} cleaned readings).",
                data={"baseline": current.name},
            )
            return {"outcome": "kept", "baseline": current.name, "refused": {}, **common}
        common["own_refused"] = {current.name: flagged}
    seeds = list(Baseline.objects.filter(kind=Baseline.Kind.SEED).order_by("name"))
    refused, fitting = {}, []
    for seed in seeds:
        flagged = _first_flag(seed, result, config)
        if flagged is not None:
            refused[seed.name] = flagged
        else:
            fitting.append(seed)
    if not fitting:
        keep = current.name if current else "none"
        system_event_emit(
            kind=SystemEvent.Kind.ALERT_CRITICAL,
            job=job,
            sensor=sensor,
            message=f"Baseline selection: every seed raised warnings on {sensor.key}'s {len(cleaned)} cleaned "
            f"readings; it keeps {keep}.",
            data={"refused": refused, "baseline": keep},
        )
        return {"outcome": "no_fit", "baseline": keep, "refused": refused, **common}
    chosen = min(fitting, key=lambda seed: (stats_distance(mean, variance, seed), seed.name))
    changed = config.baseline_id != chosen.pk
    if changed:
        DetectorSettings.objects.filter(pk=sensor.pk).update(baseline=chosen, updated_at=now)
    verb = "now uses" if changed else "keeps"
    system_event_emit(
        kind=SystemEvent.Kind.ALERT_SUCCESS,
        job=job,
        sensor=sensor,
        message=f"Baseline selection: {sensor.key} {verb} {chosen.name} (data mean {mean:.6g}, variance "
        f"{variance:.6g}; refused for warnings: {', '.join(refused) or 'none'}).",
        data={"baseline": chosen.name, "previous": current.name if current else None, "refused": refused},
    )
    return {"outcome": "changed" if changed else "kept", "baseline": chosen.name, "refused": refused, **common}


def baselines_select(
    *, sensor_ids: list[int] | None = None, progress: Progress = _no_progress, task_id: str = ""
) -> JobResult:
    """Baseline selection (scheduled every 15 days; docs/detection.md, "Baseline jobs"), for `sensor_ids` or every
    detection-enabled sensor with detector settings.

    Per sensor: its readings since its `last_selection_at` (all the first time; at most the newest
    DETECTION_SELECTION_MAX_POINTS), outside its anomalies, cleaned. Each seed runs over them with the sensor's
    window and levels; seeds that flag any reading are dropped, and the remaining seed nearest to the data's
    (mean, variance) (`stats_distance`) becomes the sensor's baseline (`alert_success`). If every seed flags, the
    current baseline stays (`alert_critical`); with fewer than m usable readings the sensor is skipped (`info`).
    A sensor on its own built/augmented baseline keeps it unless that raises warnings too. `last_selection_at` is
    set in every case. The run is recorded as a JobRun.
    """
    now = timezone.now()
    return _job_run(
        JobRun.Job.SELECT_BASELINES,
        lambda sensor, config: _select_one(sensor, config, now=now),
        sensor_ids=sensor_ids,
        progress=progress,
        task_id=task_id,
    )


def _augment_one(sensor: Sensor, config: DetectorSettings, *, now: datetime) -> dict[str, Any]:
    job = JobRun.Job.AUGMENT_BASELINES
    current = _current_baseline(config)
    if current is None:
        reason = "no baseline to augment (run manage.py load_baselines)"
        system_event_emit(
            kind=SystemEvent.Kind.INFO, job=job, sensor=sensor, message=f"Augmentation skipped {sensor.key}: {reason}."
        )
        return {"outcome": "skipped", "reason": reason, "points": 0}
    # The first time: the readings since its own baseline was made; a seed is nobody's, so from a sensor still on
    # one every reading counts (the newest DETECTION_BASELINE_MAX_POINTS), whenever the seeds were loaded.
    since = config.last_augmentation_at
    if since is None and current.kind != Baseline.Kind.SEED:
        since = current.created_at
    values = _history(sensor, since=since, limit=settings.DETECTION_BASELINE_MAX_POINTS)
    cleaned = _cleaned(sensor, values, config.window, job)
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_augmentation_at=now)
    if not isinstance(cleaned, engine.Cleaned):
        return cleaned  # skipped
    # Oldest first: the baseline's values, then the history in time order, so the newest readings end it; only
    # the newest DETECTION_BASELINE_MAX_POINTS are kept (older behaviour ages out).
    base = current.array()
    combined = np.concatenate([base, cleaned.values])
    # Where pieces meet: the baseline's own joins, the history after it, and the cuts cleaning made in the history.
    joins = [*current.joins, len(base), *(len(base) + j for j in cleaned.joins)]
    dropped = max(0, len(combined) - settings.DETECTION_BASELINE_MAX_POINTS)
    combined, joins = combined[dropped:], [j - dropped for j in joins]
    augmented = baseline_create(
        name=_sensor_baseline_name(sensor, "augmented", now),
        kind=Baseline.Kind.AUGMENTED,
        values=combined,
        window=config.window,
        sensor=sensor,
        parent=current,
        joins=joins,
        description=f"{current.name} followed by {len(cleaned.values)} cleaned readings of {sensor.key} "
        f"(of {len(values)} {f'since {since:%Y-%m-%d %H:%M %Z}' if since else 'in all'}), newest {len(combined)} kept.",
    )
    DetectorSettings.objects.filter(pk=sensor.pk).update(baseline=augmented, updated_at=now)
    system_event_emit(
        kind=SystemEvent.Kind.ALERT_SUCCESS,
        job=job,
        sensor=sensor,
        message=f"Baseline augmentation: {sensor.key} now uses {augmented.name} ({current.name} and "
        f"{len(cleaned.values)} cleaned readings, {augmented.points} points).",
        data={"baseline": augmented.name, "parent": current.name},
    )
    return {
        "outcome": "augmented",
        "baseline": augmented.name,
        "parent": current.name,
        "points": len(values),
        "cleaned": len(cleaned.values),
    }


def baselines_augment(
    *, sensor_ids: list[int] | None = None, progress: Progress = _no_progress, task_id: str = ""
) -> JobResult:
    """Baseline augmentation (scheduled every 30 days; docs/detection.md, "Baseline jobs"), for `sensor_ids` or
    every detection-enabled sensor with detector settings.

    Per sensor: its readings since `last_augmentation_at` (the first time: since its current baseline was
    created, or all of them when that is a seed), outside its anomalies, cleaned, are appended oldest first to
    its current baseline's values; the newest DETECTION_BASELINE_MAX_POINTS make a new `augmented` baseline
    (parent: the old one, which is never changed) that becomes the sensor's baseline (`alert_success`). Fewer
    than m usable readings: skipped (`info`).
    `last_augmentation_at` is set in every case. The run is recorded as a JobRun.
    """
    now = timezone.now()
    return _job_run(
        JobRun.Job.AUGMENT_BASELINES,
        lambda sensor, config: _augment_one(sensor, config, now=now),
        sensor_ids=sensor_ids,
        progress=progress,
        task_id=task_id,
    )
