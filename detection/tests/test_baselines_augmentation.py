"""Baseline augmentation (`detection.services.baselines.augmentation`)."""

import numpy as np
import pytest

from detection import engine
from detection.models import Anomaly, Baseline, DetectorSettings, SystemEvent
from detection.services.baselines import baseline_create, baselines_augment
from detection.services.settings import detector_settings_ensure
from detection.tests.factories import DAY, START, STEP, normal_series, readings_store, system_events
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


def own_baseline(sensor, *, points=4 * DAY):
    """A built baseline set as the sensor's, created (as far as augmentation is concerned) before START."""
    detector_settings_ensure([sensor.pk])
    values = normal_series(points, seed=21)
    baseline = baseline_create(
        name=f"{sensor.key}-own", kind=Baseline.Kind.BUILT, values=values, window=DAY, sensor=sensor
    )
    Baseline.objects.filter(pk=baseline.pk).update(created_at=START - STEP)
    DetectorSettings.objects.filter(pk=sensor.pk).update(baseline=baseline)
    baseline.refresh_from_db()
    return baseline


def test_augmentation_feeds_the_history_oldest_first_into_a_new_baseline(settings):
    sensor = SensorFactory(key="aug")
    old = own_baseline(sensor)
    history = normal_series(5 * DAY, start=4 * DAY, seed=22) + np.linspace(0, 3, 5 * DAY)  # slowly rising
    readings_store(sensor, history, order=np.random.default_rng(2).permutation(len(history)))  # stored in any order
    settings.DETECTION_BASELINE_MAX_POINTS = old.points + 2 * DAY  # less than both: the oldest age out
    (outcome,) = baselines_augment().outcomes
    assert outcome["outcome"] == "augmented"
    config = DetectorSettings.objects.get(pk=sensor.pk)
    new = config.baseline
    assert (new.kind, new.parent, new.sensor, new.window) == (Baseline.Kind.AUGMENTED, old, sensor, DAY)
    cleaned = engine.clean(history, DAY).values  # in time order
    expected = np.concatenate([old.array(), cleaned])[-settings.DETECTION_BASELINE_MAX_POINTS :]
    np.testing.assert_array_equal(new.array(), expected)
    # The newest history ends the new baseline (newest-first reading, the old service's bug, would end it with
    # the oldest).
    assert new.array()[-1] == history[-1]
    assert new.points == settings.DETECTION_BASELINE_MAX_POINTS
    # Where the history starts is a join (windows across it do not count towards the max distance); the oldest
    # 2m points of the old baseline aged out, so it sits 2m before its old place.
    dropped = old.points + len(cleaned) - settings.DETECTION_BASELINE_MAX_POINTS
    assert old.points - dropped in new.joins
    # The old baseline is never changed.
    np.testing.assert_array_equal(Baseline.objects.get(pk=old.pk).array(), normal_series(4 * DAY, seed=21))
    assert config.last_augmentation_at is not None
    (event,) = system_events()
    assert event.kind == SystemEvent.Kind.ALERT_SUCCESS
    assert new.name in event.message


def test_augmentation_leaves_out_anomalies_and_readings_before_the_last_run():
    sensor = SensorFactory(key="aug2")
    old = own_baseline(sensor)
    history = normal_series(6 * DAY, start=4 * DAY, seed=23)
    readings_store(sensor, history)
    # The last augmentation ran after the first day of history; an anomaly covers readings 400..449.
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_augmentation_at=START + (DAY - 1) * STEP)
    Anomaly.objects.create(
        sensor=sensor,
        started_at=START + 400 * STEP,
        ended_at=START + 449 * STEP,
        peak_level=250.0,
        peak_at=START + 420 * STEP,
        peak_status="critical",
        flagged=50,
    )
    baselines_augment(sensor_ids=[sensor.pk])
    new = DetectorSettings.objects.get(pk=sensor.pk).baseline
    used = np.concatenate([history[DAY:400], history[450:]])
    expected = np.concatenate([old.array(), engine.clean(used, DAY).values])
    np.testing.assert_array_equal(new.array(), expected)


def test_augmentation_skips_a_sensor_with_too_little_history():
    sensor = SensorFactory(key="aug3")
    old = own_baseline(sensor)
    readings_store(sensor, normal_series(DAY - 1))
    (outcome,) = baselines_augment().outcomes
    assert outcome["outcome"] == "skipped"
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == old
    assert Baseline.objects.count() == 1
    assert system_events()[0].kind == SystemEvent.Kind.INFO
