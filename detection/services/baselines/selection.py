"""Baseline selection: which seed fits each sensor's recent readings best (scheduled every 15 days by migration
0003; docs/detection.md, "Baseline jobs")."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.conf import settings

from common.jobs import ProgressCallback
from detection import engine
from detection.models import Baseline, DetectorSettings, JobRun, SystemEvent
from detection.services.baselines import jobs
from detection.services.events import system_event_emit
from sensors.models import Sensor


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


def _select_one(sensor: Sensor, config: DetectorSettings, *, now: datetime) -> dict[str, Any]:
    job = JobRun.Job.SELECT_BASELINES
    values = jobs.history(sensor, since=config.last_selection_at, limit=settings.DETECTION_SELECTION_MAX_POINTS)
    result = jobs.clean(sensor, values, config.window, job)
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_selection_at=now)
    if isinstance(result, dict):
        return result  # skipped
    cleaned = result.values
    current = jobs.current_baseline(config)
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
    refused: dict[str, int] = {}
    fitting: list[Baseline] = []
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
    *, sensor_ids: list[int] | None = None, progress: ProgressCallback | None = None, task_id: str = ""
) -> jobs.JobResult:
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
    return jobs.run(JobRun.Job.SELECT_BASELINES, _select_one, sensor_ids=sensor_ids, progress=progress, task_id=task_id)
