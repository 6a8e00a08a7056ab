"""Interactive feedback mode: an operator tells a sensor's detector that its recent readings are normal.

Enabling builds a separate feedback baseline, the baseline in use followed by the sensor's recent readings, and
makes it the active one (`DetectorSettings.active_baseline_id`); the detection service then restarts the
detector from it and replays the last m values, so readings like the recent ones stop raising alarms. Disabling
goes back to the chosen baseline and keeps the feedback baseline for the record.
"""

from __future__ import annotations

import numpy as np
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from common.exceptions import ApplicationError
from detection import engine
from detection.models import Baseline, DetectorSettings, Method
from detection.services.baselines import baseline_create
from detection.services.settings import chosen_baseline_id, detector_settings_ensure
from sensors.models import Sensor
from sensors.selectors import readings_recent

# The feedback baseline's own matrix profile is computed in the request that makes it, O(n²) in its length:
# with a 14-day seed of 10-minute points, 5,000 more readings (about 35 days) take about 2 s, 10,000 take 5 s.
# A sensor whose window is larger may still add its default 2m.
FEEDBACK_MAX_POINTS = 5_000


@transaction.atomic
def feedback_set(*, sensor: Sensor, enabled: bool, points: int | None = None) -> DetectorSettings:
    """Turn feedback mode on or off for `sensor` and return its detector settings.

    Enabling needs the baseline method (else ApplicationError 409 `not_applicable`: the discord method learns from
    the sensor's recent readings by itself) and at least m readings of the sensor (m = its window), else
    ApplicationError 409 `not_enough_readings`. It builds a new `feedback` baseline named `feedback-<key>-<UTC
    time>`: the values of the baseline in use (the chosen one, else the default seed; never an earlier feedback
    baseline, which would pile feedback on feedback) followed by the sensor's last `points` readings (default 2m, at
    least m, at most FEEDBACK_MAX_POINTS or 2m if larger; fewer if the sensor has fewer), oldest first; its parent
    is the baseline in use. Enabling again replaces the feedback baseline with a fresh one. Disabling only clears
    `feedback_enabled`: the feedback baseline stays (and stays linked) for the record.
    """
    detector_settings_ensure([sensor.pk])
    config = DetectorSettings.objects.select_for_update().get(sensor=sensor)
    if not enabled:
        config.feedback_enabled = False
        config.save(update_fields=["feedback_enabled", "updated_at"])
        return config

    if config.method != Method.BASELINE:
        raise ApplicationError(
            f"Feedback mode belongs to the baseline method; {sensor.key} uses the {config.method} method, which "
            "takes its own recent readings as normal by itself (a sustained new normal stops alarming).",
            code="not_applicable",
            status_code=status.HTTP_409_CONFLICT,
        )
    m = config.window
    if points is None:
        points = 2 * m
    limit = max(FEEDBACK_MAX_POINTS, 2 * m)
    if not m <= points <= limit:
        raise ApplicationError(
            f"points must be between the window ({m}) and {limit}, not {points}.",
            code="validation_error",
            fields={"points": [f"Between {m} and {limit}."]},
        )
    parent_id = chosen_baseline_id(config)
    if parent_id is None:
        raise ApplicationError(
            "No baseline to start from: the sensor has none chosen and there is no default seed "
            "(run manage.py load_baselines).",
            code="no_baseline",
            status_code=status.HTTP_409_CONFLICT,
        )
    recent = [value for _, value in readings_recent(sensor=sensor, limit=points)]  # oldest first
    if len(recent) < m:
        raise ApplicationError(
            f"Feedback mode needs at least {m} readings of {sensor.key} (its window m); it has {len(recent)}.",
            code="not_enough_readings",
            status_code=status.HTTP_409_CONFLICT,
        )
    parent = Baseline.objects.get(pk=parent_id)
    values = np.concatenate([parent.array(), np.asarray(recent, dtype=np.float64)])
    now = timezone.now()
    try:
        baseline = baseline_create(
            name=f"feedback-{sensor.key[:60]}-{now:%Y%m%dT%H%M%S.%fZ}",  # within the 100 characters of a name
            kind=Baseline.Kind.FEEDBACK,
            values=values,
            window=m,
            sensor=sensor,
            parent=parent,
            joins=[*parent.joins, len(parent.array())],  # the readings follow the baseline, not its last point
            description=f"{parent.name} and the last {len(recent)} readings of {sensor.key}, marked normal.",
        )
    except engine.SeriesError as exc:
        raise ApplicationError(f"No feedback baseline can be made: {exc}.", code="invalid_series") from exc
    config.feedback_baseline = baseline
    config.feedback_enabled = True
    config.save(update_fields=["feedback_baseline", "feedback_enabled", "updated_at"])
    return config
