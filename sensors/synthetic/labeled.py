"""Labeled series for measuring detection quality (`bench/detection_data.py` writes them; docs/detection.md,
"Quality").

Each series is 60 days of 10-minute readings of one normal profile with five planted anomalies of one kind:

- profiles: `low`, `mid`, `high` variance (about the seed baselines' stats: low (24, 115), mid (34, 743),
  high (38, 1809)): a daily cycle with a morning and an evening peak, quieter weekends, Gaussian noise;
- kinds: `leak` (a ramp up over 3-24 h, held 6-24 h, then repaired), `spike` (1-3 readings far off),
  `level_shift` (a step up or down held 1-3 days), `drift` (a linear drift over 2-4 days, then recalibrated),
  `seasonal` (the daily cycle's amplitude scaled ×0.3-0.5 or ×1.6-2.0, or its phase moved 3-6 h, for 2-3 days).

Each label window is the whole altered stretch (from the first altered reading to the last one). Anomalies start
on days 17, 25, 33, 41 and 49 plus a few hours, so that none falls into the training part (at most 25 % = 15
days) or the first m undefined points (m at most 2 days), and the tail of one never reaches the next.

Every (profile, kind) exists in two sets with different seeds: `tune` (to choose the settings) and `test` (held
out). Fixed seeds: the same (set, profile, kind) always gives the same numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sensors.synthetic.anomalies import DRIFT, LEAK, LEVEL_SHIFT, SEASONAL, SPIKE, plant
from sensors.synthetic.signals import POINTS_PER_DAY, two_peak_day, weekend

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=10)
DAYS = 60
ANOMALY_DAYS = (17, 25, 33, 41, 49)
SETS = {"tune": 1000, "test": 2000}  # base seeds
PROFILES = {
    # mean, daily amplitude, noise standard deviation
    "low": (24.0, 17.0, 3.0),
    "mid": (34.0, 43.0, 8.0),
    "high": (38.0, 65.0, 16.0),
}
KINDS = (LEAK, SPIKE, LEVEL_SHIFT, DRIFT, SEASONAL)


def normal_parts(profile: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(level, daily factor, noise) of a profile's 60 days; value = level + factor × shape + noise."""
    mean, amplitude, noise = PROFILES[profile]
    n = DAYS * POINTS_PER_DAY
    t = np.arange(n)
    quiet = weekend(t)
    factor = np.where(quiet, 0.7 * amplitude, amplitude)
    level = np.where(quiet, mean - 0.15 * amplitude, mean)
    return level.astype(float), factor.astype(float), rng.normal(0, noise, n), amplitude


def series_make(set_name: str, profile: str, kind: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One labeled series: its values and its anomalies (`kind`, `first` and `last` altered index, parameters)."""
    seed = SETS[set_name] + 10 * list(PROFILES).index(profile) + KINDS.index(kind)
    rng = np.random.default_rng(seed)
    level, factor, noise_values, amplitude = normal_parts(profile, rng)
    t = np.arange(DAYS * POINTS_PER_DAY)
    values = level + factor * two_peak_day(t) + noise_values
    anomalies = []
    for day in ANOMALY_DAYS:
        start = day * POINTS_PER_DAY + int(rng.integers(36, 108))  # between 06:00 and 18:00
        (first, last), params = plant(kind, values, factor, amplitude, PROFILES[profile][2], rng, start)
        anomalies.append({"kind": kind, "first": first, "last": last, **params})
    return values, anomalies


def at(index: int) -> datetime:
    """The timestamp of point `index`."""
    return START + index * STEP
