"""The normal signal: daily cycles, weekends, a bounded random walk, a flow scaled to a (mean, variance).

Scalar functions serve the live simulator (one reading at a time, on any clock); array functions take `t`, the
index of a point on the 10-minute grid (`POINTS_PER_DAY` a day, point 0 at midnight), and serve the labeled
benchmark series and the seed baselines.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

import numpy as np
import numpy.typing as npt

SECONDS_PER_HOUR = 3600.0
POINTS_PER_DAY = 144  # 10-minute points: the detector's default window m


# --- one reading at a time (the live simulator) ----------------------------------------------------------------


def hour_of_day(timestamp: datetime, zone: tzinfo) -> float:
    """The hour of `timestamp` in `zone`, with its fraction (14:30 → 14.5)."""
    local = timestamp.astimezone(zone)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def daily_cosine(hour: float, *, amplitude: float, peak_hour: float, jitter: float = 0.0) -> float:
    """A 24-hour cosine peaking at `peak_hour` + `jitter` (hours)."""
    return amplitude * math.cos(2 * math.pi * (hour - peak_hour - jitter) / 24)


def reflect(value: float, limit: float) -> float:
    """Keep a random walk within ±limit by reflecting it at the bounds."""
    if value > limit:
        value = 2 * limit - value
    elif value < -limit:
        value = -2 * limit - value
    return max(-limit, min(limit, value))


# --- series on the 10-minute grid (labeled sets, seed baselines) -----------------------------------------------


def sine_day(t: np.ndarray, *, points_per_day: int = POINTS_PER_DAY) -> np.ndarray:
    """A plain daily sine of amplitude 1, rising through 0 at point 0: the simplest periodic sensor (the
    throughput and query benchmarks' load)."""
    return np.sin(2 * np.pi * t / points_per_day)


def weekend(t: np.ndarray) -> np.ndarray:
    """True on the points of days 5 and 6 of each week (point 0 starts a Monday)."""
    return (t // POINTS_PER_DAY) % 7 >= 5


def two_peak_day(t: np.ndarray, phase: float = 0.0) -> np.ndarray:
    """A day with a morning and an evening peak, amplitude about 1 (phase in points, a later day when positive)."""
    x = 2 * np.pi * (t - phase) / POINTS_PER_DAY
    return 0.8 * np.sin(x - 2.0) + 0.45 * np.sin(2 * x - 0.5)


def flow_day(t: np.ndarray) -> np.ndarray:
    """Relative flow over a day: night minimum, a morning and a larger evening peak, a little at midday."""
    hour = (t % POINTS_PER_DAY) / 6.0
    morning = np.exp(-0.5 * ((hour - 7.5) / 1.5) ** 2)
    evening = 1.3 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)
    midday = 0.35 * np.exp(-0.5 * ((hour - 13.0) / 2.5) ** 2)
    return 0.15 + morning + evening + midday


def flow_series(mean: float, variance: float, *, days: int, rng: np.random.Generator) -> np.ndarray:
    """`days` of a flow-like signal scaled to (`mean`, `variance`), values positive and rounded to 0.01.

    A low night flow, morning and evening peaks, a weekend 15 % quieter, and noise that grows with the flow. A
    power of the signal sets the spread, a factor the level: the stats come out at the targets up to the rounding.
    """
    t = np.arange(days * POINTS_PER_DAY)
    shape = flow_day(t) * np.where(weekend(t), 0.85, 1.0)
    # Multiplicative noise (busier hours vary more) plus a little smooth drift within each day.
    raw = shape * rng.lognormal(0.0, 0.25, t.size) * (1.0 + 0.05 * np.sin(2 * np.pi * t / (3.5 * POINTS_PER_DAY)))
    # A power of the (positive) signal reaches the target spread without going below zero: a higher power makes
    # the peaks sharper relative to the night flow, so the coefficient of variation grows with it (bisection).
    target_cv = np.sqrt(variance) / mean
    low, high = 0.05, 20.0
    for _ in range(100):
        power = (low + high) / 2
        shaped = raw**power
        if shaped.std() / shaped.mean() < target_cv:
            low = power
        else:
            high = power
    values: npt.NDArray[np.float64] = shaped * (mean / shaped.mean())
    return np.round(values, 2)
