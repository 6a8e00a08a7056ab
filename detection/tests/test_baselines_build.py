"""Making baselines, and building one from a sensor's first readings (`detection.services.baselines.build`)."""

import numpy as np
import pytest

from common.exceptions import ApplicationError
from detection import engine
from detection.models import Baseline, DetectorSettings
from detection.services.baselines import baseline_build
from detection.tests.factories import DAY, normal_series, readings_store
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


def test_build_uses_the_first_readings_cleaned_and_becomes_the_sensors_baseline():
    sensor = SensorFactory(key="tank")
    values = normal_series(7 * DAY, seed=5)
    values[300:310] += 50.0  # a discord among the first readings: cleaned away
    readings_store(sensor, values, order=np.random.default_rng(1).permutation(len(values)))  # stored in any order
    baseline = baseline_build(sensor=sensor, points=6 * DAY)
    expected = engine.clean(values[: 6 * DAY], DAY).values
    assert len(expected) < 6 * DAY
    assert expected.max() < 50.0
    np.testing.assert_array_equal(baseline.array(), expected)
    assert (baseline.kind, baseline.sensor, baseline.window) == (Baseline.Kind.BUILT, sensor, DAY)
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == baseline


def test_build_refuses_fewer_than_2m_readings():
    sensor = SensorFactory(key="new")
    readings_store(sensor, normal_series(2 * DAY - 1))
    with pytest.raises(ApplicationError, match="new: 287 readings to use; building a baseline needs at least 2m=288"):
        baseline_build(sensor=sensor, points=1000)
    with pytest.raises(ApplicationError, match="new: 200 readings to use; building a baseline needs at least 2m=288"):
        baseline_build(sensor=sensor, points=200)
    assert not Baseline.objects.exists()


def test_build_cleaning_keeps_2m_points_leaving_the_mildest_discords_in():
    sensor = SensorFactory(key="short")
    values = normal_series(8 * DAY, seed=5)
    values[250:260] += 80.0  # the worst: cleaned away (about 3.5m of the 8m points)
    values[800:810] += 40.0  # removing it too would leave fewer than 2m
    readings_store(sensor, values)
    baseline = baseline_build(sensor=sensor, points=8 * DAY)
    expected = engine.clean(values, DAY, keep=2 * DAY)
    assert expected.left_in == 2  # the +40 stretch's two discords
    assert len(engine.clean(values, DAY).values) < 2 * DAY  # what cleaning without a floor would have left
    np.testing.assert_array_equal(baseline.array(), expected.values)
    assert baseline.points >= 2 * DAY
    assert baseline.array().max() < 80.0
    assert f"{expected.left_in} discord(s) above the accepted distance left in, to keep 2m=288" in baseline.description


def test_build_cleans_readings_around_10000_relative_to_themselves(settings):
    """The leak service's absolute cut (2000) removed every discord's neighbourhood of such readings and left no
    baseline; the default rule judges their discords by their own spread. `legacy` still restores the old cut."""
    sensor = SensorFactory(key="big")
    values = normal_series(8 * DAY, seed=5, mean=10_000.0, amplitude=2_500.0, noise=400.0)
    values[300:310] += 6_000.0
    readings_store(sensor, values)
    baseline = baseline_build(sensor=sensor, points=6 * DAY)
    np.testing.assert_array_equal(baseline.array(), engine.clean(values[: 6 * DAY], DAY).values)
    # The spike's neighbourhood only: as much as the same readings in thousands lose.
    assert baseline.points == len(engine.clean(values[: 6 * DAY] / 1000.0, DAY).values) > 2 * DAY
    assert "left in" not in baseline.description
    settings.DETECTION_CLEANING = "legacy"  # every discord is above 2000: only keeping 2m stops the cuts
    legacy = baseline_build(sensor=sensor, points=6 * DAY)
    assert legacy.points < 3 * DAY
    assert "discord(s) above the accepted distance left in" in legacy.description


@pytest.mark.filterwarnings("ignore:A large number of values in `P`")  # stumpy's note on the constant series
def test_build_from_constant_readings_makes_a_baseline_on_which_any_change_is_critical():
    sensor = SensorFactory(key="shut")
    readings_store(sensor, np.full(3 * DAY, -4.25))
    baseline = baseline_build(sensor=sensor, points=3 * DAY)
    assert (baseline.points, baseline.mean, baseline.variance) == (3 * DAY, -4.25, 0.0)
    assert baseline.max_distance == engine.noise_floor(baseline.array(), DAY)
    detector = engine.detector_for(baseline.array(), DAY, warning=120, critical=200, max_distance=baseline.max_distance)
    verdicts = detector.feed_all([-4.25] * DAY + [-4.25, -4.0])
    assert [v.status for v in verdicts[DAY:]] == ["ok", "critical"]
