"""The anomaly shapes (sensors.synthetic.anomalies): pure, so no database."""

import random

import numpy as np
import pytest

from sensors.synthetic.anomalies import DRIFT, LEAK, LEVEL_SHIFT, SEASONAL, SPIKE, chance, leak_deviation, plant, signed
from sensors.synthetic.signals import POINTS_PER_DAY, two_peak_day

SHAPE = {"magnitude": 100.0, "rise": 600.0, "plateau": 1800.0, "decay": 1200.0}


def test_leak_rises_smoothly_holds_then_decays_to_zero():
    rise = [leak_deviation(s, **SHAPE) for s in range(0, 601, 60)]
    assert rise[0] == 0
    assert all(a < b for a, b in zip(rise, rise[1:], strict=False))
    assert rise[-1] == pytest.approx(100)
    assert leak_deviation(300, **SHAPE) == pytest.approx(50)  # the smooth step is symmetric
    assert leak_deviation(600 + 900, **SHAPE) == 100
    assert 0 < leak_deviation(600 + 1800 + 600, **SHAPE) < 100
    assert leak_deviation(600 + 1800 + 1200, **SHAPE) == 0
    assert leak_deviation(10_000, **SHAPE) == 0


def test_chance_scales_an_hourly_probability_to_any_interval():
    assert chance(0.1, 3600) == pytest.approx(0.1)
    assert 1 - (1 - chance(0.1, 1800)) ** 2 == pytest.approx(0.1)
    assert chance(0.0, 3600) == 0
    assert chance(1.0, 1) == 1.0


def test_signed_draws_within_the_bounds_with_either_sign():
    rng = random.Random(1)  # noqa: S311 (synthetic data)
    draws = [signed(rng, (2.0, 4.0)) for _ in range(200)]
    assert all(2.0 <= abs(d) <= 4.0 for d in draws)
    assert any(d > 0 for d in draws)
    assert any(d < 0 for d in draws)


@pytest.mark.parametrize("kind", [LEAK, SPIKE, LEVEL_SHIFT, DRIFT, SEASONAL])
def test_plant_alters_exactly_its_window(kind):
    n = 10 * POINTS_PER_DAY
    factor = np.full(n, 20.0)
    values = factor * two_peak_day(np.arange(n))
    before = values.copy()
    (first, last), params = plant(kind, values, factor, 20.0, 2.0, np.random.default_rng(3), 2 * POINTS_PER_DAY)
    changed = np.flatnonzero(~np.isclose(values, before))
    assert first == 2 * POINTS_PER_DAY
    assert changed.min() >= first
    assert changed.max() <= last
    assert changed.size > 0.5 * (last - first + 1) or kind == LEAK  # a leak's ramp starts at zero
    assert params


def test_plant_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="wobble"):
        plant("wobble", np.zeros(10), np.zeros(10), 1.0, 1.0, np.random.default_rng(0), 0)
