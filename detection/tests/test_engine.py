"""The detector, baseline statistics and cleaning on plain arrays."""

import os
import subprocess
import sys

import numpy as np
import pytest
from django.conf import settings as django_settings

from detection import engine
from detection.tests.factories import DAY, normal_series


def test_first_m_values_are_undefined_then_levels_follow():
    detector = engine.detector_for(normal_series(4 * DAY), DAY, warning=100, critical=200)
    verdicts = detector.feed_all(normal_series(DAY + 5, start=4 * DAY, seed=7))
    assert [v.status for v in verdicts[:DAY]] == ["undefined"] * DAY
    assert all(v.level is not None and v.status == "ok" for v in verdicts[DAY:])


def test_memory_is_bounded_by_restarts_and_levels_stay_defined():
    m = 16
    detector = engine.detector_for(normal_series(8 * m), m, warning=100, critical=200)
    verdicts = detector.feed_all(normal_series(10 * m, seed=3))
    assert len(detector.values) < 2 * m
    assert len(detector.stream.T_) < 8 * m + 2 * m
    assert all(v.level is not None for v in verdicts[m:])  # replayed values keep the newest window defined


def test_level_is_newest_distance_over_baseline_max():
    baseline = normal_series(4 * DAY)
    stats = engine.baseline_stats(baseline, DAY)
    detector = engine.detector_for(baseline, DAY, warning=100, critical=200)
    verdict = detector.feed_all(normal_series(DAY + 1, start=4 * DAY, seed=9))[-1]
    assert verdict.level == pytest.approx(verdict.distance / stats["max_distance"] * 100)


def test_windows_across_joins_do_not_count_towards_max_distance():
    low, high = normal_series(3 * DAY, mean=20), normal_series(3 * DAY, mean=60)
    pieced = np.concatenate([low, high])
    blind = engine.baseline_stats(pieced, DAY)["max_distance"]
    aware = engine.baseline_stats(pieced, DAY, joins=[3 * DAY])["max_distance"]
    alone = max(engine.baseline_stats(low, DAY)["max_distance"], engine.baseline_stats(high, DAY)["max_distance"])
    assert blind > 5 * aware
    assert aware == pytest.approx(alone, rel=0.5)


def test_cleaned_joins_are_where_cuts_were_made():
    cleaned = engine.Cleaned(
        values=np.zeros(40), removed=[(0, 10), (30, 40), (60, 90)], discords=[], accepted_distance=0
    )
    # The cut at the start and the one at the end join nothing; the one in the middle joins 20 and 40.
    assert cleaned.joins == [20]


def test_short_baselines_are_refused():
    with pytest.raises(engine.SeriesError, match="at least 288"):
        engine.baseline_stats(np.arange(200.0), DAY)


@pytest.mark.filterwarnings("ignore:A large number of values in `P`")  # stumpy's note on the constant series
@pytest.mark.parametrize("level", [0.0, 7.5, -1e6])
def test_a_constant_baseline_is_accepted_and_any_real_change_from_it_is_critical(level):
    baseline = np.full(4 * DAY, level)
    stats = engine.baseline_stats(baseline, DAY)
    assert stats["max_distance"] == engine.noise_floor(baseline, DAY) > 0  # floored, never 0
    detector = engine.detector_for(baseline, DAY, warning=120, critical=200)
    same = detector.feed_all(np.full(DAY + 3, level))
    assert [(v.level, v.status) for v in same[DAY:]] == [(0.0, "ok")] * 3
    changed = detector.feed(level + 1e-6 * max(abs(level), 1.0))  # a millionth of its magnitude
    assert changed.status == "critical"
    assert changed.level <= engine.LEVEL_CAP


def test_the_noise_floor_is_rounding_noise_of_the_series_magnitude():
    assert engine.noise_floor(np.array([1e6, -3e6, 5.0]), 16) == pytest.approx(1e-9 * 3e6 * 4)
    assert engine.noise_floor(np.zeros(10), 16) == np.finfo(np.float64).tiny
    # A varying baseline is far above it, whatever its scale and offset.
    for scale, offset in [(1e-4, 0.0), (1.0, 0.0), (1e3, 1e6)]:
        baseline = normal_series(4 * DAY) * scale + offset
        assert engine.baseline_stats(baseline, DAY)["max_distance"] > 1e4 * engine.noise_floor(baseline, DAY)


def test_a_window_crosses_a_join_when_it_holds_points_of_both_pieces():
    # m = 4, a join at 10: the windows ending at 10..13 hold points from before 10 and from 10 on.
    assert [p for p in range(8, 16) if engine.crosses_join(p, 4, [10])] == [10, 11, 12]


# --- cleaning ---------------------------------------------------------------------------------------------------


def test_cleaning_removes_planted_discords_and_keeps_the_rest_in_order():
    series = normal_series(10 * DAY, seed=3)
    planted = [(400, 420), (1000, 1030)]
    for start, stop in planted:
        series[start:stop] += 60.0
    cleaned = engine.clean(series, DAY)
    assert cleaned.removed, "the planted stretches are discords"
    for start, stop in planted:  # each planted stretch is inside a removed range...
        assert any(a <= start and stop <= b for a, b in cleaned.removed), (start, stop, cleaned.removed)
    for a, b in cleaned.removed:  # ...and nothing is removed away from them ([i − m, i + 2m) around a discord)
        assert any(a < stop + 2 * DAY and start - DAY <= b for start, stop in planted), (a, b)
    keep = np.ones(len(series), dtype=bool)
    for a, b in cleaned.removed:
        keep[a:b] = False
    np.testing.assert_array_equal(cleaned.values, series[keep])  # the rest, joined in its order
    assert cleaned.values.max() < 60.0


def test_cleaning_fewer_than_m_points_is_a_clear_error():
    with pytest.raises(engine.SeriesError, match="cleaning needs at least m=144 points, got 143"):
        engine.clean(normal_series(DAY - 1), DAY)


def planted_series():
    series = normal_series(10 * DAY, seed=3)
    series[400:420] += 60.0
    series[1000:1030] -= 40.0
    return series


@pytest.mark.parametrize(("scale", "offset"), [(1e-4, 0.0), (1e-4, -3.0), (1.0, -100.0), (1e3, 1e6), (1e4, 0.0)])
def test_cleaning_removes_the_same_stretches_at_any_scale_and_offset(scale, offset):
    series = planted_series()
    reference = engine.clean(series, DAY)
    scaled = engine.clean(series * scale + offset, DAY)
    assert scaled.removed == reference.removed != []
    assert scaled.accepted_distance == pytest.approx(reference.accepted_distance * scale, rel=1e-9)
    np.testing.assert_allclose(scaled.values, reference.values * scale + offset, rtol=1e-12)


def test_the_legacy_rule_restores_the_absolute_cut_of_2000():
    """Values around 30,000: every top discord is above 2000, so the old rule cuts the whole series away."""
    series = planted_series() * 1000.0
    assert engine.clean(series, DAY).removed == engine.clean(planted_series(), DAY).removed
    legacy = engine.clean(series, DAY, rule="legacy")
    assert legacy.accepted_distance == engine.LEGACY_CLEAN_CUT
    assert len(legacy.values) < 2 * DAY  # not even a baseline left
    with pytest.raises(ValueError, match="relative, legacy"):
        engine.clean(series, DAY, rule="absolute")


def test_an_unknown_cleaning_rule_stops_the_settings_from_loading():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "DETECTION_CLEANING": "absolute"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert 'DETECTION_CLEANING must be "relative" or "legacy", not \'absolute\'.' in result.stderr


def test_discords_are_judged_by_their_spread_even_when_most_are_equal():
    # Quantized readings: more than half of the top distances equal, so the MAD is 0. The mean deviation then
    # gives the spread, and only the far discord is above the accepted distance, not every one above the median.
    distances = [5.0] * 8 + [5.1, 5.2, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert 9.0 < engine.discord_threshold(distances) < 10.0
    assert engine.discord_threshold([5.0] * 15) == 5.0  # nothing is above equal distances


def test_rounding_noise_in_a_constant_series_is_not_cleaned():
    series = 1e6 + np.random.default_rng(3).normal(0, 1e-4, 6 * DAY)  # constant to a ten-billionth
    series[300:305] += 4e-3  # and a bump of four billionths
    cleaned = engine.clean(series, DAY)
    distances = [distance for _, distance in cleaned.discords]
    assert max(distances) > engine.discord_threshold(distances)  # among noise, the bump is an outlier...
    assert cleaned.removed == []  # ...but not a discord: below the noise floor
    assert cleaned.accepted_distance == engine.noise_floor(series, DAY)
