"""What is injected into the normal signal: the anomaly kinds and their shapes.

The live simulator draws its anomalies one reading at a time (`leak_deviation`, `chance`, `signed`, with Python's
`random`); the labeled benchmark series plant theirs into whole arrays (`plant`, with a NumPy generator). The shapes
differ on purpose and each is pinned by its users' seeds: the simulator's leak rises smoothly and decays, the
labeled set's leak ramps up linearly and is repaired at once (docs/simulator.md, docs/detection.md).
"""

from __future__ import annotations

import random

import numpy as np

from sensors.synthetic.signals import POINTS_PER_DAY, SECONDS_PER_HOUR, two_peak_day

LEAK = "leak"
SPIKE = "spike"
LEVEL_SHIFT = "level_shift"
DRIFT = "drift"
SEASONAL = "seasonal"


# --- one reading at a time (the live simulator) ----------------------------------------------------------------


def leak_deviation(elapsed: float, *, magnitude: float, rise: float, plateau: float, decay: float) -> float:
    """A smooth rise to the magnitude, a plateau, then a decay back to zero (`elapsed` seconds since the start)."""
    if elapsed < rise:
        x = elapsed / rise
        return magnitude * x * x * (3 - 2 * x)
    elapsed -= rise
    if elapsed < plateau:
        return magnitude
    x = min(1.0, (elapsed - plateau) / decay)
    return magnitude * (1 - x) ** 2


def chance(per_hour: float, seconds: float) -> float:
    """The chance of an event in `seconds` when it happens with probability `per_hour` in an hour."""
    if per_hour >= 1:
        return 1.0
    # float ** float is typed Any (a negative base gives a complex); the base is positive here.
    stays_quiet: float = (1 - per_hour) ** (seconds / SECONDS_PER_HOUR)
    return 1 - stays_quiet


def signed(rng: random.Random, bounds: tuple[float, float]) -> float:
    """A magnitude drawn within `bounds`, either sign."""
    magnitude = rng.uniform(*bounds)
    return magnitude if rng.random() < 0.5 else -magnitude


# --- into a whole series (the labeled sets) ---------------------------------------------------------------------


def plant(
    kind: str,
    values: np.ndarray,
    factor: np.ndarray,
    amplitude: float,
    noise: float,
    rng: np.random.Generator,
    start: int,
) -> tuple[tuple[int, int], dict[str, float]]:
    """Alter `values` in place from index `start`; returns (first, last) altered index and the parameters.

    `factor` is the daily cycle's amplitude at each point (the cycle is `factor × two_peak_day`), `amplitude` the
    weekday one and `noise` the standard deviation of the series' noise: sizes are drawn relative to them.
    """
    day = POINTS_PER_DAY
    t = np.arange(len(values))
    if kind == LEAK:
        ramp, hold = int(rng.integers(18, 145)), int(rng.integers(36, 145))
        height = float(rng.uniform(0.25, 0.8) * amplitude)
        values[start : start + ramp] += np.linspace(0, height, ramp, endpoint=False)
        values[start + ramp : start + ramp + hold] += height
        return (start, start + ramp + hold - 1), {"ramp_points": ramp, "hold_points": hold, "height": height}
    if kind == SPIKE:
        width = int(rng.integers(1, 4))
        size = float(rng.uniform(4, 10) * noise + rng.uniform(0.5, 1.5) * amplitude) * rng.choice([-1, 1])
        values[start : start + width] += size
        return (start, start + width - 1), {"width_points": width, "size": size}
    if kind == LEVEL_SHIFT:
        length = int(rng.integers(day, 3 * day + 1))
        step = float(rng.uniform(0.25, 0.7) * amplitude) * rng.choice([-1, 1])
        values[start : start + length] += step
        return (start, start + length - 1), {"length_points": length, "step": step}
    if kind == DRIFT:
        length = int(rng.integers(2 * day, 4 * day + 1))
        reach = float(rng.uniform(0.3, 0.9) * amplitude) * rng.choice([-1, 1])
        values[start : start + length] += np.linspace(0, reach, length)
        return (start, start + length - 1), {"length_points": length, "reach": reach}
    if kind == SEASONAL:
        length = int(rng.integers(2 * day, 3 * day + 1))
        span = slice(start, start + length)
        change = rng.choice(["amplitude", "phase"])
        if change == "amplitude":
            scale = float(rng.choice([rng.uniform(0.3, 0.5), rng.uniform(1.6, 2.0)]))
            values[span] += (scale - 1) * factor[span] * two_peak_day(t[span])
            return (start, start + length - 1), {"length_points": length, "amplitude_scale": scale}
        shift = int(rng.integers(18, 37))
        values[span] += factor[span] * (two_peak_day(t[span], phase=shift) - two_peak_day(t[span]))
        return (start, start + length - 1), {"length_points": length, "phase_shift_points": shift}
    raise ValueError(kind)
