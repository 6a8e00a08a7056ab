"""Test data of the detection app: series with known shapes, and baselines built from them."""

from __future__ import annotations

import numpy as np

from detection.models import Baseline
from detection.services.baselines import baseline_create

DAY = 144  # points per day at 10-minute cadence: the default window m


def normal_series(n: int, *, start: int = 0, mean: float = 30.0, amplitude: float = 8.0, noise: float = 1.5, seed=0):
    """A daily cycle with noise: the 'normal' behaviour of the test sensors."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    return mean + amplitude * np.sin(2 * np.pi * t / DAY) + rng.normal(0, noise, n)


def seed_baseline(*, name: str = "seed-mid", points: int = 14 * DAY, window: int = DAY, **shape) -> Baseline:
    return baseline_create(name=name, kind=Baseline.Kind.SEED, values=normal_series(points, **shape), window=window)
