"""The discord method's detector (detection/discord.py): numbers in, numbers out, no database."""

import math

import numpy as np
import pytest

from detection import discord
from detection.discord import DiscordDetector
from detection.models import array_from_bytes, array_to_bytes

M = 16
STEP = 300.0  # five-minute readings
FLAG = 120.0


def daily(n: int, *, seed: int = 1, period: int = 288, noise: float = 0.8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 40 + 10 * np.sin(2 * np.pi * t / period) + rng.normal(0, noise, n)


def run(values, times=None, m=M):
    return DiscordDetector(m).feed_arrays(values, times)


def test_undefined_for_the_first_readings_then_defined():
    levels, scores = run(daily(400))
    assert np.isnan(levels[: discord.EXT_MIN]).all()
    assert not np.isnan(levels[discord.EXT_MIN :]).any()
    # The score (the window's nearest-neighbour distance) needs a subsequence and a neighbour m/2 before it.
    first_score = int(np.flatnonzero(~np.isnan(scores))[0])
    assert first_score == M + M // 2 - 1


def test_a_spike_is_flagged_and_normal_readings_are_not():
    values = daily(4000)
    values[3500] += 25  # about 30 standard deviations of the noise, inside the daily range
    levels, _ = run(values)
    assert levels[3500] >= 200
    quiet = np.concatenate([levels[600:3500], levels[3600:]])
    assert (quiet >= FLAG).sum() <= 3  # records of pure noise happen, rarely


@pytest.mark.parametrize("piece", [1, 7, 137, 1000])
def test_detection_in_pieces_through_stored_bytes_equals_one_run(piece):
    """Each piece by a new detector rebuilt from the stored bytes (a new worker) gives exactly the levels and
    scores of one uninterrupted detector: state is the whole story."""
    values = daily(3000, seed=3)
    values[2000:2040] += 12
    times = np.arange(len(values)) * STEP
    times[1500:] += 6 * 3600  # and a gap
    whole = run(values, times)
    levels, scores, vector = [], [], np.empty(0)
    for start in range(0, len(values), piece):
        detector = DiscordDetector.from_vector(M, vector)
        got = detector.feed_arrays(values[start : start + piece], times[start : start + piece])
        levels.append(got[0])
        scores.append(got[1])
        vector = array_from_bytes(array_to_bytes(detector.state_vector()))
    np.testing.assert_array_equal(np.concatenate(levels), whole[0])
    np.testing.assert_array_equal(np.concatenate(scores), whole[1])


def test_state_is_fixed_size():
    small, large = DiscordDetector(M), DiscordDetector(M)
    small.feed_arrays(daily(10))
    large.feed_arrays(daily(20_000), np.arange(20_000) * STEP)
    assert len(small.state_vector()) == len(large.state_vector()) == discord.STATE_FLOATS
    assert discord.STATE_FLOATS * 8 < 11_000  # about 10 kB a sensor
    np.testing.assert_allclose(large.values, daily(20_000)[-discord.MP_H :])


@pytest.mark.parametrize(("scale", "offset"), [(1000.0, 1e6), (1e-3, -5.0), (-1.0, 0.0)])
def test_scale_and_offset_change_no_status(scale, offset):
    """Multiplying a series by 1,000 and adding 10⁶ (or shrinking it, or turning it over) changes no status: every
    part judges ratios of differences."""
    values = daily(4000, seed=5)
    values[1700:1760] = values[1700:1760] * 0.2 + 30
    values[3100] -= 30
    base, _ = run(values)
    other, _ = run(values * scale + offset)
    np.testing.assert_array_equal(np.isnan(base), np.isnan(other))
    for threshold in (120, 200):
        np.testing.assert_array_equal(base >= threshold, other >= threshold)


def test_a_level_shift_stops_alarming_by_itself():
    """A sustained new normal: alarms at the shift, then none, with no baseline rebuilt and nobody acting."""
    values = daily(6000, seed=7)
    values[3000:] += 30  # the tank was refilled to a new level and stays there
    levels, _ = run(values)
    assert levels[3000:3010].max() >= FLAG
    # Within a day the new level is inside the recent range, its shapes have neighbours in the history and
    # its days look like the days before.
    assert (levels[3000 + 288 :] >= FLAG).sum() <= 3


def test_constant_and_negative_series_are_judged():
    flat = np.full(600, -7.5)
    levels, _ = run(flat)
    assert set(levels[discord.EXT_MIN :]) == {0.0}
    changed = flat.copy()
    changed[500] = -7.49  # a constant signal that changes: the most unusual thing it can do
    levels, _ = run(changed)
    assert levels[500] >= 200


def test_a_gap_starts_a_new_segment():
    """A pause longer than GAP usual steps: no subsequence spans it, so the score is undefined until a
    subsequence and a neighbour fit after the pause; levels stay defined (the ranges are kept)."""
    values = daily(900)
    times = np.arange(900) * STEP
    times[600:] += 3 * 3600  # three hours without readings: 36 steps > 10
    levels, scores = run(values, times)
    assert not np.isnan(scores[599])
    assert np.isnan(scores[600 : 600 + M + M // 2 - 1]).all()
    assert not np.isnan(scores[600 + M + M // 2 - 1])
    assert not np.isnan(levels[600:]).any()
    # Irregular but not long steps (up to 3 times the usual one) never start a segment.
    jitter = np.cumsum(np.random.default_rng(2).uniform(0.5, 3.0, 900) * STEP)
    _, scores = run(values, jitter)
    assert not np.isnan(scores[M + M // 2 - 1 :]).any()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        DiscordDetector(M).feed_arrays([1.0, math.nan])
    with pytest.raises(ValueError, match="differ in length"):
        DiscordDetector(M).feed_arrays([1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="between 4 and 300"):
        DiscordDetector(3)
    with pytest.raises(ValueError, match="floats"):
        DiscordDetector.from_vector(M, np.zeros(10))


def test_learning_readings_are_undefined_also_across_restarts():
    values = daily(800)
    whole, _ = DiscordDetector(M, learning=288).feed_arrays(values)
    assert np.isnan(whole[:288]).all()
    assert not np.isnan(whole[288:]).any()
    first = DiscordDetector(M, learning=288)
    head, _ = first.feed_arrays(values[:100])
    tail, _ = DiscordDetector.from_vector(M, first.state_vector(), learning=288).feed_arrays(values[100:])
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)


@pytest.mark.parametrize(
    ("step", "block"),
    [(300.0, 24), (3600.0, 2), (600.0, 12), (1.0, 7200), (None, discord.BLK_F_DEFAULT)],
)
def test_the_day_part_counts_a_day_of_the_sensors_own_readings(step, block):
    """Blocks of a day / 12 of the sensor's usual step: 24 five-minute readings, 2 hourly ones, 7,200 of one a
    second; with no timestamps, 5-minute readings are assumed."""
    detector = DiscordDetector(M)
    times = None if step is None else np.arange(200) * step
    detector.feed_arrays(daily(200), times)
    assert detector.state["sc"][discord.S_BF] == block


def test_a_missing_daily_cycle_is_flagged_at_any_cadence():
    """Hourly readings: a day whose cycle is missing (flat at the mean, inside the usual range) is unusual."""
    days, per_day = 40, 24
    values = daily(days * per_day, period=per_day, noise=0.3)
    missing = slice(30 * per_day, 31 * per_day)
    values[missing] = 40.0 + np.random.default_rng(4).normal(0, 0.3, per_day)
    levels, _ = run(values, np.arange(len(values)) * 3600.0)
    assert np.nanmax(levels[missing.start : missing.stop + per_day]) >= FLAG
    assert (levels[10 * per_day : 30 * per_day] >= FLAG).sum() <= 2
