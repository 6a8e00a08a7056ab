"""The discord method's detector (detection/discord.py): numbers in, numbers out, no database."""

import math

import numpy as np
import pytest

from detection.discord import DiscordDetector, DiscordParams
from detection.models import array_from_bytes, array_to_bytes

PARAMS = DiscordParams(m=16, history=400, reference=200)
STEP = 300.0  # five-minute readings


def daily(n: int, *, seed: int = 1, period: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 40 + 10 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.8, n)


def levels(detector: DiscordDetector, values, times=None) -> list[float | None]:
    return [v.level for v in detector.feed_many(values, times)]


def test_undefined_during_warm_up_then_defined():
    detector = DiscordDetector(PARAMS)
    result = levels(detector, daily(200))
    defined = [i for i, level in enumerate(result) if level is not None]
    assert defined, "levels become defined"
    # A subsequence, a neighbour outside the exclusion zone and m scores to compare with: 2m + m/2 values.
    assert defined[0] == PARAMS.warmup - 1
    assert all(level is not None for level in result[defined[0] :])


def test_a_spike_is_flagged_and_normal_readings_are_not():
    values = daily(1200)
    values[1000] += 25  # a spike of about 30 standard deviations of the noise
    result = levels(DiscordDetector(PARAMS), values)
    assert result[1000] >= 120
    quiet = [level for i, level in enumerate(result[300:], start=300) if not 1000 <= i < 1000 + PARAMS.m]
    assert sum(level >= 120 for level in quiet) <= 3  # records of pure noise happen, rarely


def test_restart_equivalence_in_pieces_through_stored_bytes():
    """Detecting in pieces, each piece by a new detector rebuilt from the stored arrays (a new worker), gives
    exactly the levels and scores of one uninterrupted detector."""
    values = daily(1500, seed=3)
    values[900:940] += 12
    times = np.arange(len(values)) * STEP
    whole = DiscordDetector(PARAMS).feed_many(values, times)
    pieces, state = [], None
    for start in range(0, len(values), 137):
        detector = DiscordDetector(PARAMS) if state is None else DiscordDetector.resume(PARAMS, state)
        pieces += detector.feed_many(values[start : start + 137], times[start : start + 137])
        state = {name: array_from_bytes(array_to_bytes(array)) for name, array in detector.state().items()}
    assert pieces == whole


def test_state_is_bounded():
    detector = DiscordDetector(PARAMS)
    detector.feed_many(daily(5000), np.arange(5000) * STEP)
    state = detector.state()
    assert len(state["values"]) == PARAMS.history
    assert len(state["scores"]) == PARAMS.reference
    assert len(state["times"]) <= 33
    assert len(state["stats"]) == 4


def test_scale_and_offset_change_no_level():
    """Multiplying a series by 1,000 and adding 10⁶ changes no status: distances and their reference scale
    together, and an offset cancels in the differences."""
    values = daily(1500, seed=5)
    values[700:760] = values[700:760] * 0.2 + 30
    values[1100] -= 30
    base = levels(DiscordDetector(PARAMS), values)
    scaled = levels(DiscordDetector(PARAMS), values * 1000 + 1e6)
    tiny = levels(DiscordDetector(PARAMS), values * 1e-3 - 5)
    for other in (scaled, tiny):
        assert [a is None for a in base] == [b is None for b in other]
        pairs = [(a, b) for a, b in zip(base, other, strict=True) if a is not None]
        assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in pairs)
        for warning in (120, 200):
            assert [a >= warning for a, _ in pairs] == [b >= warning for _, b in pairs]


def test_a_level_shift_stops_alarming_by_itself():
    """A sustained new normal: alarms at the shift, then none, with no baseline rebuilt."""
    values = daily(3000, seed=7)
    values[1500:] += 30  # the tank was refilled to a new level and stays there
    result = levels(DiscordDetector(PARAMS), values)
    at_shift = result[1500 : 1500 + 2 * PARAMS.m]
    assert max(at_shift) >= 120
    # After the new level has been seen for a while (its subsequences have neighbours in the history, the
    # shift's scores have left the reference), readings are ok again.
    after = result[1500 + PARAMS.reference + 2 * PARAMS.m :]
    assert sum(level >= 120 for level in after) <= 3


def test_constant_and_negative_series_are_judged():
    flat = np.full(600, -7.5)
    result = levels(DiscordDetector(PARAMS), flat)
    assert all(level in (None, 0.0) for level in result)
    # A constant signal that changes is the most unusual thing it can do.
    changed = flat.copy()
    changed[500] = -7.0
    assert levels(DiscordDetector(PARAMS), changed)[500] >= 200


def test_a_gap_starts_a_new_segment():
    """A pause longer than `gap` usual steps: no subsequence spans it, so the readings after it are undefined
    until a subsequence and a neighbour fit after the pause; the reference scores are kept."""
    values = daily(900)
    times = np.arange(900) * STEP
    times[600:] += 3 * 3600  # three hours without readings: 36 steps > 10
    detector = DiscordDetector(PARAMS)
    result = levels(detector, values, times)
    assert detector.restarts == 1
    assert result[599] is not None
    assert all(level is None for level in result[600 : 600 + PARAMS.m + PARAMS.exclusion - 1])
    first_after = next(i for i in range(600, 900) if result[i] is not None)
    assert first_after == 600 + PARAMS.m + PARAMS.exclusion - 1  # the reference survived the gap
    # Irregular but not long steps (up to 3 times the usual one) never start a segment.
    jitter = np.cumsum(np.random.default_rng(2).uniform(0.5, 3.0, 900) * STEP)
    detector = DiscordDetector(PARAMS)
    detector.feed_many(values, jitter)
    assert detector.restarts == 0


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        DiscordDetector(PARAMS).feed_many([1.0, math.nan])


def test_params_are_checked():
    with pytest.raises(ValueError, match="at least 4"):
        DiscordParams(m=3)
    with pytest.raises(ValueError, match="3m"):
        DiscordParams(m=16, history=40)


def test_state_vector_round_trip():
    values = daily(900, seed=9)
    times = np.arange(900) * STEP
    whole = DiscordDetector(PARAMS).feed_many(values, times)
    first = DiscordDetector(PARAMS)
    got = first.feed_many(values[:500], times[:500])
    vector = array_from_bytes(array_to_bytes(first.state_vector()))
    got += DiscordDetector.from_vector(PARAMS, vector).feed_many(values[500:], times[500:])
    assert got == whole
