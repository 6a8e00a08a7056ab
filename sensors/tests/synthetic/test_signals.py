"""The normal signal's pieces (sensors.synthetic.signals): pure, so no database."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from sensors.synthetic.signals import (
    POINTS_PER_DAY,
    daily_cosine,
    flow_day,
    flow_series,
    hour_of_day,
    reflect,
    sine_day,
    two_peak_day,
    weekend,
)


def test_hour_of_day_is_in_the_zone_with_its_fraction():
    moment = datetime(2024, 12, 1, 12, 30, 36, tzinfo=UTC)
    assert hour_of_day(moment, UTC) == pytest.approx(12.51)
    assert hour_of_day(moment, ZoneInfo("Europe/Paris")) == pytest.approx(13.51)  # UTC+1 in winter


def test_daily_cosine_peaks_at_its_hour_plus_jitter_and_bottoms_out_twelve_hours_later():
    assert daily_cosine(14.0, amplitude=10, peak_hour=14) == pytest.approx(10)
    assert daily_cosine(2.0, amplitude=10, peak_hour=14) == pytest.approx(-10)
    assert daily_cosine(14.5, amplitude=10, peak_hour=14, jitter=0.5) == pytest.approx(10)


@pytest.mark.parametrize(
    ("value", "expected"), [(3.0, 3.0), (8.0, 8.0), (10.0, 6.0), (-9.0, -7.0), (30.0, -8.0), (-30.0, 8.0)]
)
def test_reflect_mirrors_a_walk_at_its_bounds_and_never_leaves_them(value, expected):
    assert reflect(value, 8.0) == expected


def test_weekend_is_days_five_and_six_of_each_week():
    t = np.arange(14 * POINTS_PER_DAY)
    days = [bool(weekend(t[day * POINTS_PER_DAY : (day + 1) * POINTS_PER_DAY]).all()) for day in range(14)]
    assert days == [False] * 5 + [True] * 2 + [False] * 5 + [True] * 2
    assert not weekend(t[4 * POINTS_PER_DAY : 5 * POINTS_PER_DAY]).any()


def test_two_peak_day_repeats_daily_has_amplitude_about_one_and_shifts_by_its_phase():
    t = np.arange(2 * POINTS_PER_DAY)
    day = two_peak_day(t)
    np.testing.assert_allclose(day[:POINTS_PER_DAY], day[POINTS_PER_DAY:], atol=1e-12)
    assert 0.9 < day.max() < 1.3
    assert -1.3 < day.min() < -0.9
    np.testing.assert_allclose(two_peak_day(t, phase=18)[18:], day[:-18], atol=1e-12)


def test_flow_day_is_positive_lowest_at_night_highest_in_the_evening():
    hours = np.arange(POINTS_PER_DAY) / 6.0
    flow = flow_day(np.arange(POINTS_PER_DAY))
    assert flow.min() > 0
    assert 0 <= hours[flow.argmin()] < 5 or hours[flow.argmin()] > 23
    assert 18 <= hours[flow.argmax()] <= 20


def test_flow_series_meets_its_targets_stays_positive_and_repeats_with_the_seed():
    values = flow_series(33.70, 742.79, days=14, rng=np.random.default_rng(5))
    assert values.size == 14 * POINTS_PER_DAY
    assert values.min() >= 0
    assert values.mean() == pytest.approx(33.70, abs=0.01)
    assert values.var() == pytest.approx(742.79, rel=0.001)
    np.testing.assert_array_equal(values, flow_series(33.70, 742.79, days=14, rng=np.random.default_rng(5)))
    assert not np.array_equal(values, flow_series(33.70, 742.79, days=14, rng=np.random.default_rng(6)))


def test_sine_day_rises_through_zero_peaks_at_a_quarter_day_and_repeats_daily():
    t = np.arange(2 * POINTS_PER_DAY)
    day = sine_day(t)
    assert day[0] == 0
    assert day[1] > 0
    assert day.argmax() == POINTS_PER_DAY // 4
    np.testing.assert_allclose(day[POINTS_PER_DAY:], day[:POINTS_PER_DAY], atol=1e-12)
    seconds = sine_day(np.arange(86400), points_per_day=86400)
    assert seconds.argmax() == 21600
    assert seconds.max() == pytest.approx(1.0)
