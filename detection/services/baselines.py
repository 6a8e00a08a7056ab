"""Baselines: creating them from a series (stats computed once, stored with the values)."""

from __future__ import annotations

import numpy as np

from detection import engine
from detection.models import Baseline, array_to_bytes
from sensors.models import Sensor


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
