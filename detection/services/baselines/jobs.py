"""What the baseline jobs (selection and augmentation) share: the run recorded as a JobRun (detection's history of
runs, named by task id; the job of common.jobs carries the progress) with one outcome a sensor, and each sensor's
usable history (outside its anomalies, cleaned).

The jobs are scheduled by migrations 0003 and 0004, run by the Celery tasks of `detection.tasks` and by the
`select_baselines` and `augment_baselines` commands (docs/detection.md, "Baseline jobs").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from common.jobs import ProgressCallback, no_progress
from detection import engine
from detection.models import Anomaly, Baseline, DetectorSettings, JobRun, SystemEvent
from detection.services.events import system_event_emit
from detection.services.settings import chosen_baseline_id, detector_settings_ensure
from sensors.models import Reading, Sensor


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


def run(
    job: str,
    step: Callable[..., dict[str, Any]],
    *,
    sensor_ids: list[int] | None,
    progress: ProgressCallback | None,
    task_id: str,
) -> JobResult:
    """Run `step(sensor, config, now=<the run's start>)` for each sensor with a JobRun row around it (committed at
    start, so a running or crashed job is visible). A failure of the job itself marks the run failed, emits
    `alert_critical` with the error, and is raised again; a sensor whose data cannot be used is one outcome, not a
    failure.

    A task delivered again after its worker was lost mid-run (the baseline tasks are acknowledged late) runs
    again from the start under the same task id: the run it interrupted is then marked failed here, since no
    process is left to finish it. Its sensors already done stay done (each step committed on its own)."""
    progress = progress or no_progress
    label = JobRun.Job(job).label
    now = timezone.now()
    if task_id:
        JobRun.objects.filter(job=job, task_id=task_id, outcome=JobRun.Outcome.RUNNING).update(
            outcome=JobRun.Outcome.FAILED,
            finished_at=now,
            error="interrupted: the worker running it was lost; the job was delivered again and run anew",
        )
    run = JobRun.objects.create(job=job, task_id=task_id or "", started_at=now)
    result = JobResult(job=job, job_run=run.pk)
    try:
        sensors = _job_sensors(sensor_ids)
        configs = detector_settings_ensure([s.pk for s in sensors])
        for index, sensor in enumerate(sensors):
            progress(index, len(sensors), f"{label}: {sensor.key}")
            try:
                with transaction.atomic():
                    outcome = step(sensor, configs[sensor.pk], now=now)
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


def history(sensor: Sensor, *, since: datetime | None, limit: int) -> np.ndarray:
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


def clean(sensor: Sensor, values: np.ndarray, m: int, job: str) -> engine.Cleaned | dict[str, Any]:
    """The cleaning's result, or the `skipped` outcome (a dict) after an `info` event when fewer than m remain."""
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


def current_baseline(config: DetectorSettings) -> Baseline | None:
    """The baseline the sensor's settings chose, else the default seed; None before `load_baselines`."""
    baseline_id = chosen_baseline_id(config)
    return Baseline.objects.filter(pk=baseline_id).first() if baseline_id else None
