"""The detection batch (`detection.services.detect.readings_detect`) with the baseline method: levels, late
readings, and sensors skipped or failed."""

import pytest

from detection.models import Anomaly, Detection, SensorEvent, Status
from detection.services.detect import readings_detect
from detection.tests.factories import DAY, START, STEP, leak_series, normal_series, readings_store, seed_baseline
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


def statuses(sensor):
    return list(Detection.objects.filter(sensor=sensor).order_by("timestamp").values_list("status", flat=True))


def test_planted_leak_is_critical_inside_and_ok_outside():
    seed_baseline()
    sensor = SensorFactory()
    readings_store(sensor, leak_series())
    result = readings_detect(sensors={sensor.pk: START})
    assert result.detected == 1400
    got = statuses(sensor)
    assert got[:DAY] == [Status.UNDEFINED] * DAY
    assert Status.CRITICAL in got[900:1000]
    # Outside the leak and the m readings whose window still holds part of it, all is ok.
    assert set(got[DAY:900]) == {Status.OK}
    assert set(got[1000 + DAY :]) == {Status.OK}
    anomaly = Anomaly.objects.get(sensor=sensor)
    assert START + 900 * STEP <= anomaly.started_at < START + 1000 * STEP
    assert anomaly.closed_at is not None
    assert anomaly.peak_status == Status.CRITICAL
    kinds = list(SensorEvent.objects.filter(sensor=sensor).order_by("id").values_list("kind", flat=True))
    assert kinds == ["critical", "ok"]


def test_reading_committed_after_a_newer_one_is_late():
    seed_baseline()
    sensor = SensorFactory()
    values = normal_series(300, start=14 * DAY)
    readings_store(sensor, values[:200])
    readings_detect(sensors={sensor.pk: START})
    Reading.objects.create(sensor=sensor, timestamp=START + 150.5 * STEP, value=30.0)
    result = readings_detect(sensors={sensor.pk: START + 150.5 * STEP})
    assert (result.late, result.detected) == (1, 0)
    assert Detection.objects.get(sensor=sensor, timestamp=START + 150.5 * STEP).status == Status.LATE


def test_disabled_sensor_and_missing_baseline_are_skipped():
    sensor = SensorFactory(detection_enabled=False)
    readings_store(sensor, normal_series(10))
    assert readings_detect(sensors={sensor.pk: START}).sensors == 0
    other = SensorFactory()
    readings_store(other, normal_series(10))
    result = readings_detect(sensors={other.pk: START})
    assert result.no_baseline == [other.key]
    assert not Detection.objects.exists()


def test_a_sensor_whose_detector_cannot_be_built_does_not_stop_the_others():
    seed_baseline()  # 14 days: 2,016 points
    good, bad = SensorFactory(key="good"), SensorFactory(key="bad")
    readings_store(good, normal_series(20))
    readings_store(bad, normal_series(20))
    from detection.services.settings import detector_settings_ensure

    detector_settings_ensure([bad.pk])
    bad.detector.window = 1500  # a baseline needs 2m points: 2,016 < 3,000
    bad.detector.save()
    result = readings_detect(sensors={good.pk: START, bad.pk: START})
    assert result.detected == 20
    assert list(result.failed) == ["bad"]
    assert "at least 3000" in result.failed["bad"]
    assert not Detection.objects.filter(sensor=bad).exists()
