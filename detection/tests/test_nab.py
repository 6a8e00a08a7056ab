"""NAB score and window F1 (detection/nab.py) on small cases worked out by hand.

Notation: S(p) = 2 / (1 + e^(5p)) - 1 (NAB's scaled sigmoid), S(p) = -1 for p >= 3. Landmarks used below:
    S(-1)   = 2 / (1 + e^-5)    - 1 = 2 / 1.0067379 - 1 = 0.9866143   (a window's first row)
    S(-0.8) = 2 / (1 + e^-4)    - 1 = 2 / 1.0183156 - 1 = 0.9640276
    S(-0.4) = 2 / (1 + e^-2)    - 1 = 2 / 1.1353353 - 1 = 0.7615942
    S(-0.1) = 2 / (1 + e^-0.5)  - 1 = 2 / 1.6065307 - 1 = 0.2449187
    S(1/9)  = 2 / (1 + e^0.556) - 1 = 2 / 2.7429090 - 1 = -0.2708471
    S(2)    = 2 / (1 + e^10)    - 1 = 2 / 22027.466 - 1 = -0.9999092
A true positive weighs tpWeight × S(p) / S(-1); a false positive fpWeight × S(p). Most cases use a window of rows
10..19 (width 10) and `probation=0`, so that only the rule under test is at work.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detection.nab import (
    nab_file_score,
    nab_flags,
    nab_normalize,
    nab_null_score,
    nab_perfect_score,
    nab_probation,
    nab_window_rows,
    scaled_sigmoid,
    window_f1,
)

WINDOW = [(10, 19)]  # rows 10..19: width 10


def flags(rows: int, *flagged: int) -> np.ndarray:
    result = np.zeros(rows, dtype=bool)
    result[list(flagged)] = True
    return result


def score(rows, flagged, windows=WINDOW, **kwargs):
    kwargs.setdefault("probation", 0)
    return nab_file_score(flags(rows, *flagged), windows=windows, **kwargs)


# --- the rules' building blocks --------------------------------------------------------------------------------------


def test_probation_is_15_percent_of_the_rows_at_most_750():
    assert nab_probation(100) == 15  # floor(0.15 × 100)
    assert nab_probation(4032) == 604  # floor(604.8)
    assert nab_probation(4999) == 749  # floor(749.85)
    assert nab_probation(5000) == 750
    assert nab_probation(20000) == 750  # min(3000, 0.15 × 5000)


def test_scaled_sigmoid_landmarks():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.9866143)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(1.0) == pytest.approx(-0.9866143)  # 2 / (1 + e^5) - 1
    assert scaled_sigmoid(2.0) == pytest.approx(-0.9999092)
    assert scaled_sigmoid(3.0) == -1.0  # clamped from p = 3 on
    assert scaled_sigmoid(np.array([-1.0, 3.5])) == pytest.approx([0.9866143, -1.0])


def test_a_detection_is_a_score_at_or_above_the_threshold():
    assert nab_flags([0.2, 0.5, 0.7, np.nan], 0.5).tolist() == [False, True, True, False]
    by_scores = nab_file_score([0.0] * 10 + [0.9] + [0.0] * 19, threshold=0.5, windows=WINDOW, probation=0)
    assert by_scores.score == score(30, [10]).score


def test_scores_without_a_threshold_are_refused():
    with pytest.raises(ValueError, match="booleans"):
        nab_file_score(np.zeros(30), windows=WINDOW)


# --- true positives --------------------------------------------------------------------------------------------------


def test_detection_at_the_windows_first_row_earns_the_full_tp_weight():
    # p = -(19 - 10 + 1) / 10 = -1: 1.0 × S(-1) / S(-1) = 1.0
    result = score(30, [10])
    assert result.score == pytest.approx(1.0)
    assert (result.detected, result.missed, result.false_positives) == (1, 0, 0)
    assert result.first_detections == (10,)


def test_detection_at_the_windows_last_row_earns_little():
    # p = -(19 - 19 + 1) / 10 = -0.1: S(-0.1) / S(-1) = 0.2449187 / 0.9866143 = 0.2482415
    result = score(30, [19])
    assert result.score == pytest.approx(0.2482415, abs=1e-6)
    assert result.first_detections == (19,)


def test_only_the_first_of_two_detections_in_a_window_counts():
    # Row 12: p = -(19 - 12 + 1) / 10 = -0.8: S(-0.8) / S(-1) = 0.9640276 / 0.9866143 = 0.9771068.
    # Row 15 (p = -0.5, worth 0.8598 alone) adds nothing and is no false positive.
    result = score(30, [12, 15])
    assert result.score == pytest.approx(0.9771068, abs=1e-6)
    assert result.first_detections == (12,)
    assert (result.detected, result.false_positives) == (1, 0)
    assert result.row_counts.tp == 2  # NAB's row count still sees both rows
    assert result.score == score(30, [12]).score


def test_profile_weights():
    # The standard, reward_low_FP_rate and reward_low_FN_rate profiles: tp 1.0, fp 0.11 / 0.22 / 0.11, fn 1 / 1 / 2.
    # A detection at the first row (+1.0), a false positive before the window (-fp), a missed second window (-fn).
    windows = [(10, 19), (40, 49)]
    assert score(60, [3, 10], windows).score == pytest.approx(1.0 - 0.11 - 1.0)
    assert score(60, [3, 10], windows, profile="reward_low_FP_rate").score == pytest.approx(1.0 - 0.22 - 1.0)
    assert score(60, [3, 10], windows, profile="reward_low_FN_rate").score == pytest.approx(1.0 - 0.11 - 2.0)
    with pytest.raises(ValueError, match="Unknown NAB profile"):
        score(60, [], windows, profile="lenient")


# --- false positives and misses ------------------------------------------------------------------------------------


def test_false_positive_before_any_window_costs_the_full_fp_weight():
    # Row 3 has no window before it: p = 3, S = -1: 0.11 × -1 = -0.11; the window is missed: -1.0.
    result = score(30, [3])
    assert result.fp_score == pytest.approx(-0.11)
    assert result.fn_score == -1.0
    assert result.score == pytest.approx(-1.11)
    assert (result.detected, result.missed, result.false_positives) == (0, 1, 1)


def test_false_positive_right_after_a_window_costs_little():
    # Row 20, one past the window's last row 19: p = (20 - 19) / (10 - 1) = 1/9: 0.11 × S(1/9) = 0.11 × -0.2708471
    # = -0.0297932. With the window found at its first row (+1.0): 0.9702068.
    result = score(60, [10, 20])
    assert result.fp_score == pytest.approx(-0.0297932, abs=1e-6)
    assert result.score == pytest.approx(0.9702068, abs=1e-6)


def test_false_positive_far_after_a_window_costs_about_the_full_fp_weight():
    # Row 37: p = (37 - 19) / 9 = 2: 0.11 × S(2) = 0.11 × -0.9999092 = -0.1099900.
    assert score(60, [37]).fp_score == pytest.approx(-0.1099900, abs=1e-6)
    # Row 46: p = (46 - 19) / 9 = 3: clamped, exactly -0.11.
    assert score(60, [46]).fp_score == -0.11


def test_false_positive_is_measured_from_the_closest_preceding_window():
    # Windows 10..19 and 30..39; row 41: p = (41 - 39) / 9 = 2/9 from the second window, not 22/9 from the first.
    # 0.11 × S(2/9) = 0.11 × (2 / (1 + e^1.111) - 1) = 0.11 × (2 / 4.0377 - 1) = 0.11 × -0.5046 = -0.0555.
    result = score(60, [41], [(10, 19), (30, 39)])
    assert result.fp_score == pytest.approx(-0.0555, abs=1e-4)


def test_missed_window_costs_the_fn_weight():
    assert score(30, []).score == -1.0
    assert score(30, [], profile="reward_low_FN_rate").score == -2.0
    assert score(30, []).null == -1.0


# --- the probationary part -----------------------------------------------------------------------------------------


def test_detections_in_the_probationary_part_are_ignored():
    # 100 rows: probation = floor(0.15 × 100) = 15 rows (0..14). No window.
    no_window = []
    assert nab_file_score(flags(100, 0, 5, 14), windows=no_window).score == 0.0
    at_15 = nab_file_score(flags(100, 15), windows=no_window)
    assert at_15.score == pytest.approx(-0.11)  # row 15 is the first scored row: a false positive, no window before
    assert at_15.probation == 15


def test_window_partly_in_the_probationary_part_is_scored_on_its_later_rows():
    # Rows 10..19, probation 15: row 12 is ignored; row 16 counts, its position taken in the whole window:
    # p = -(19 - 16 + 1) / 10 = -0.4: S(-0.4) / S(-1) = 0.7615942 / 0.9866143 = 0.7719269.
    result = nab_file_score(flags(100, 12, 16), windows=WINDOW)
    assert result.score == pytest.approx(0.7719269, abs=1e-6)
    assert result.first_detections == (16,)
    # Never flagging it after the probationary part is a miss.
    assert nab_file_score(flags(100, 12), windows=WINDOW).score == -1.0


def test_window_inside_the_probationary_part_is_not_scored():
    # Rows 2..5 end before row 15: neither found nor missed; NAB's perfect score still counts it.
    result = nab_file_score(flags(100), windows=[(2, 5)])
    assert (result.score, result.detected, result.missed, result.null, result.perfect) == (0.0, 0, 0, 0.0, 1.0)
    # It is still the previous window of a false positive after it: row 16, p = (16 - 5) / (4 - 1) = 3.67 >= 3.
    assert nab_file_score(flags(100, 16), windows=[(2, 5)]).score == -0.11
    # Row 15 with a window 2..14 (width 13): p = (15 - 14) / 12 = 1/12: 0.11 × (2 / (1 + e^0.4167) - 1)
    # = 0.11 × (2 / 2.5169 - 1) = 0.11 × -0.2054 = -0.0226.
    assert nab_file_score(flags(100, 15), windows=[(2, 14)]).score == pytest.approx(-0.0226, abs=1e-4)


# --- null, perfect, normalization ----------------------------------------------------------------------------------


def test_null_and_perfect_scores():
    # 100 rows, probation 15: windows 10..19 and 40..49 are scored, 2..5 is not.
    windows = [(2, 5), (10, 19), (40, 49)]
    assert nab_null_score(100, windows) == -2.0
    assert nab_null_score(100, windows, "reward_low_FN_rate") == -4.0
    assert nab_perfect_score(windows) == 3.0
    assert nab_perfect_score(2, "reward_low_FP_rate") == 2.0


def test_normalization_maps_null_to_0_and_perfect_to_100():
    windows_a, windows_b = [(10, 19)], [(20, 29), (40, 49)]
    never = [score(60, [], windows_a), score(60, [], windows_b)]
    perfect = [score(60, [10], windows_a), score(60, [20, 40], windows_b)]
    assert nab_normalize(never) == 0.0
    assert nab_normalize(perfect) == pytest.approx(100.0)
    # File a found at its first row (+1), file b misses both (-2): total -1; null -3, perfect 3:
    # 100 × (-1 - -3) / (3 - -3) = 100 × 2 / 6 = 33.33.
    mixed = [score(60, [10], windows_a), score(60, [], windows_b)]
    assert nab_normalize(mixed) == pytest.approx(100 / 3)
    assert nab_normalize([score(60, [], [])]) is None  # no window anywhere: nothing to normalize by
    with pytest.raises(ValueError, match="mix"):
        nab_normalize([score(60, [], windows_a), score(60, [], windows_a, profile="reward_low_FN_rate")])


def test_flagging_every_row_scores_far_below_zero():
    # 100 rows, probation 15, window 40..49. The window is found at its first row: +1.0.
    # Rows 15..39 (25) have no window before them: 25 × -0.11 = -2.75.
    # Rows 50..99 (50) each cost at least 0.11 × |S(1/9)| = 0.0298 (the one right after the window), so at most
    # -1.49 together, and at most 0.11 each: the score lies in [1 - 2.75 - 5.5, 1 - 2.75 - 1.49] = [-7.25, -3.24].
    # Null -1, perfect 1: normalized 100 × (score + 1) / 2 <= 100 × -2.24 / 2 = -112.
    result = nab_file_score(np.ones(100, dtype=bool), windows=[(40, 49)])
    assert -7.25 <= result.score <= -3.24
    assert result.false_positives == 75
    assert nab_normalize([result]) < -100


def test_row_counts_are_nabs():
    # 30 rows, probation 4 (floor 4.5): rows 4..29 are counted. Window 10..19, flags at 2 (ignored), 5, 12, 13, 25.
    result = nab_file_score(flags(30, 2, 5, 12, 13, 25), windows=WINDOW)
    counts = result.row_counts
    assert (counts.tp, counts.fp) == (2, 2)  # 12 and 13; 5 and 25
    assert counts.fn == 8  # the other rows of the window
    assert counts.tn == 26 - 2 - 2 - 8  # 26 counted rows
    assert counts.total == 26


# --- windows given as timestamps ------------------------------------------------------------------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)


def stamps(rows: int) -> list[datetime]:
    return [START + timedelta(minutes=5 * i) for i in range(rows)]


def test_windows_match_rows_by_timestamp():
    ts = stamps(30)
    # Exact timestamps of rows 10 and 19; the same as strings; a start between rows 9 and 10 and an end between
    # rows 19 and 20 match the same rows.
    assert nab_window_rows(ts, [(ts[10], ts[19])]) == [(10, 19)]
    as_strings = [t.isoformat() for t in ts]
    assert nab_window_rows(as_strings, [(as_strings[10], as_strings[19])]) == [(10, 19)]
    between = (ts[9] + timedelta(minutes=2), ts[19] + timedelta(minutes=2))
    assert nab_window_rows(ts, [between]) == [(10, 19)]
    result = nab_file_score(flags(30, 10), timestamps=as_strings, windows=[(as_strings[10], as_strings[19])])
    assert result.score == pytest.approx(1.0)  # found at its first row (probation: rows 0..3)


def test_naive_timestamps_and_windows():
    ts = [f"2015-09-01 00:{5 * i:02d}:00" for i in range(12)]
    assert nab_window_rows(ts, [["2015-09-01 00:10:00", "2015-09-01 00:20:00"]]) == [(2, 4)]
    with pytest.raises(ValueError, match="naive"):
        nab_window_rows(ts, [(START, START + timedelta(hours=1))])


def test_window_ends_at_the_first_row_of_a_repeated_end_timestamp():
    # Rows 0..9; rows 5 and 6 share a timestamp. A window ending at it ends at row 5 (NAB finds the right edge as
    # the first row holding the end timestamp); row 6 is outside it, one row past the window.
    ts = stamps(10)
    ts.insert(6, ts[5])
    ts = ts[:10]
    assert nab_window_rows(ts, [(ts[3], ts[5])]) == [(3, 5)]
    # Window F1 reads [start, end] inclusively: both rows.
    assert window_f1(flags(10), timestamps=ts, windows=[(ts[3], ts[5])], train=0).windows == ((3, 5 + 1),)
    # A flag on row 6 is a NAB false positive right after the window: p = (6 - 5) / (3 - 1) = 0.5:
    # 0.11 × S(0.5) = 0.11 × (2 / (1 + e^2.5) - 1) = 0.11 × (2 / 13.1825 - 1) = 0.11 × -0.8483 = -0.0933.
    result = nab_file_score(flags(10, 6), timestamps=ts, windows=[(ts[3], ts[5])], probation=0)
    assert result.fp_score == pytest.approx(-0.0933, abs=1e-4)


def test_bad_windows_are_refused():
    ts = stamps(30)
    with pytest.raises(ValueError, match="overlap"):
        nab_window_rows(ts, [(ts[10], ts[19]), (ts[15], ts[25])])
    with pytest.raises(ValueError, match="holds no row"):
        nab_window_rows(ts, [(ts[10] + timedelta(minutes=1), ts[10] + timedelta(minutes=2))])
    with pytest.raises(ValueError, match="ends before"):
        nab_window_rows(ts, [(ts[19], ts[10])])
    with pytest.raises(ValueError, match="inside the 30 rows"):
        score(30, [], [(25, 30)])
    with pytest.raises(ValueError, match="never decrease"):
        nab_window_rows(list(reversed(ts)), [])


def test_windows_are_sorted_by_start():
    result = score(60, [40], [(40, 49), (10, 19)])
    assert result.windows == ((10, 19), (40, 49))
    assert result.first_detections == (None, 40)


# --- window F1 -----------------------------------------------------------------------------------------------------


def test_window_f1_found_window_tail_and_false_alarm_runs():
    # 400 rows, train int(0.15 × 400) = 60. Window 100..109 found at 105. Flags 110..120 lie in its 144-row tail:
    # neither finds nor false alarms. Flags 300, 301, 302 are one run; 310 another; 30 is in the training part.
    result = window_f1(flags(400, 30, 105, *range(110, 121), 300, 301, 302, 310), windows=[(100, 109)])
    assert (result.train, result.found, result.scored_windows) == (60, 1, 1)
    assert result.first_detections == (105,)
    assert (result.false_alarm_runs, result.false_alarm_rows) == (2, 4)
    # P = 1 / (1 + 2) = 1/3, R = 1 / 1 = 1: F1 = 2 × (1/3) × 1 / (1/3 + 1) = (2/3) / (4/3) = 0.5
    assert result.precision == pytest.approx(1 / 3)
    assert result.recall == 1.0
    assert result.f1 == pytest.approx(0.5)
    assert result.delays == [pytest.approx(0.5)]  # (105 - 100) / 10 rows


def test_window_f1_tail_ends_after_144_rows():
    # Window 100..109: its tail is rows 110..253; a flag at 254 is a false alarm.
    assert window_f1(flags(400, 253), windows=[(100, 109)]).false_alarm_runs == 0
    assert window_f1(flags(400, 254), windows=[(100, 109)]).false_alarm_runs == 1


def test_window_f1_missed_and_unscored_windows():
    # Nothing found: F1 = 0 (P undefined, R = 0).
    missed = window_f1(flags(400, 300), windows=[(100, 109)])
    assert (missed.found, missed.f1, missed.recall) == (0, 0.0, 0.0)
    # A window starting in the training part (rows 0..59) is not scored; flags in it are not false alarms.
    unscored = window_f1(flags(400, 65), windows=[(50, 70)])
    assert (unscored.scored_windows, unscored.false_alarm_runs, unscored.f1) == (0, 0, None)
    # No window at all: no F1, false alarm runs still counted.
    no_window = window_f1(flags(400, 100, 101, 200), windows=[])
    assert (no_window.f1, no_window.false_alarm_runs) == (None, 2)
