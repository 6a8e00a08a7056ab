"""Making baselines: `baseline_create`, the one way a baseline row is made (its stats computed here), and
`baseline_build`, a sensor's own baseline from its first readings (`build_baseline`).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.exceptions import ApplicationError
from detection import engine
from detection.models import Baseline, DetectorSettings, array_to_bytes
from detection.services.settings import detector_settings_ensure
from sensors.models import Reading, Sensor


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


def sensor_baseline_name(sensor: Sensor, kind: str, now: datetime) -> str:
    """A name for a baseline made from the sensor's readings."""
    # Unique (the column is) and readable in the admin: the key, the kind and the moment to the microsecond.
    return f"{sensor.key[:60]}-{kind}-{now:%Y%m%d-%H%M%S-%f}"


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
            name=sensor_baseline_name(sensor, "built", now),
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
