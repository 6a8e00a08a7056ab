"""The labeled benchmark series (sensors.synthetic.labeled): pure, so no database."""

import hashlib

import numpy as np
import pytest

from sensors.synthetic.labeled import ANOMALY_DAYS, DAYS, KINDS, PROFILES, SETS, START, at, series_make
from sensors.synthetic.signals import POINTS_PER_DAY


def fingerprint(values: np.ndarray) -> str:
    return hashlib.sha256("".join(f"{value:.4f}\n" for value in values).encode()).hexdigest()


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("tune", "low", "leak"), "7841f40a6725b3f228fb5e8e41007d45dbf887342ce0ffea32270e6512919f85"),
        (("test", "high", "seasonal"), "9f3c9f6cef046ff4fdc54991b55aacbe75f0997ac1e121bfbb2513cdbee3afe0"),
    ],
)
def test_the_series_are_the_published_ones(names, expected):
    # The figures in docs/detection.md were measured on these numbers: the same command must write the same bytes.
    values, _ = series_make(*names)
    assert fingerprint(values) == expected


def test_sets_differ_and_each_series_repeats():
    tune, tune_anomalies = series_make("tune", "mid", "spike")
    again, again_anomalies = series_make("tune", "mid", "spike")
    np.testing.assert_array_equal(tune, again)
    assert tune_anomalies == again_anomalies
    assert not np.array_equal(tune, series_make("test", "mid", "spike")[0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("set_name", list(SETS))
def test_five_windows_one_a_planned_day_by_daylight_none_reaching_the_next(set_name, kind):
    for profile in PROFILES:
        values, anomalies = series_make(set_name, profile, kind)
        assert values.size == DAYS * POINTS_PER_DAY
        assert [a["first"] // POINTS_PER_DAY for a in anomalies] == list(ANOMALY_DAYS)
        assert all(36 <= a["first"] % POINTS_PER_DAY < 108 for a in anomalies)
        assert all(a["kind"] == kind for a in anomalies)
        assert all(a["last"] < b["first"] for a, b in zip(anomalies, anomalies[1:], strict=False))


def test_points_are_ten_minutes_apart_from_a_monday():
    assert START.weekday() == 0
    assert (at(POINTS_PER_DAY) - at(0)).total_seconds() == 86400
