"""Baseline augmentation: each sensor's baseline grows with its own cleaned history into a new `augmented` one
(scheduled every 30 days by migration 0004; docs/detection.md, "Baseline jobs")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings

from common.jobs import ProgressCallback
from detection.models import Baseline, DetectorSettings, JobRun, SystemEvent
from detection.services.baselines import jobs
from detection.services.baselines.build import baseline_create, sensor_baseline_name
from detection.services.events import system_event_emit
from sensors.models import Sensor


def _augment_one(sensor: Sensor, config: DetectorSettings, *, now: datetime) -> dict[str, Any]:
    job = JobRun.Job.AUGMENT_BASELINES
    current = jobs.current_baseline(config)
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
    values = jobs.history(sensor, since=since, limit=settings.DETECTION_BASELINE_MAX_POINTS)
    cleaned = jobs.clean(sensor, values, config.window, job)
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_augmentation_at=now)
    if isinstance(cleaned, dict):
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
        name=sensor_baseline_name(sensor, "augmented", now),
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
    *, sensor_ids: list[int] | None = None, progress: ProgressCallback | None = None, task_id: str = ""
) -> jobs.JobResult:
    """Baseline augmentation (scheduled every 30 days; docs/detection.md, "Baseline jobs"), for `sensor_ids` or
    every detection-enabled sensor with detector settings.

    Per sensor: its readings since `last_augmentation_at` (the first time: since its current baseline was
    created, or all of them when that is a seed), outside its anomalies, cleaned, are appended oldest first to
    its current baseline's values; the newest DETECTION_BASELINE_MAX_POINTS make a new `augmented` baseline
    (parent: the old one, which is never changed) that becomes the sensor's baseline (`alert_success`). Fewer
    than m usable readings: skipped (`info`).
    `last_augmentation_at` is set in every case. The run is recorded as a JobRun.
    """
    return jobs.run(
        JobRun.Job.AUGMENT_BASELINES, _augment_one, sensor_ids=sensor_ids, progress=progress, task_id=task_id
    )
