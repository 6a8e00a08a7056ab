"""The detector and baseline statistics on plain arrays."""

import numpy as np
import pytest

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
