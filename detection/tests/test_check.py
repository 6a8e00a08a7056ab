"""The scheduled detector check: silent sensors become not_available once; readings no task reached are swept."""

from datetime import UTC, datetime, timedelta

import pytest

from detection.models import Detection, DetectorState, SensorEvent
from detection.services.detect import detectors_check, readings_detect
from detection.tests.factories import normal_series, seed_baseline
from sensors.models import Reading, Sensor
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def store(sensor, values, *, first=0):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + (first + i) * STEP, value=float(v)) for i, v in enumerate(values)
    )
    Sensor.objects.filter(pk=sensor.pk).update(latest_timestamp=START + (first + len(values) - 1) * STEP)


@pytest.fixture
def detected_sensor():
    seed_baseline()
    sensor = SensorFactory()
    store(sensor, normal_series(20))
    readings_detect(sensors={sensor.pk: START})
    return sensor


def test_silent_sensor_becomes_not_available_once(detected_sensor):
    last = START + 19 * STEP
    assert detectors_check(now=last + timedelta(minutes=59)).silent == 0
    assert detectors_check(now=last + timedelta(minutes=61)).silent == 1
    assert detectors_check(now=last + timedelta(minutes=90)).silent == 0  # no second event while silent
    event = SensorEvent.objects.get(sensor=detected_sensor)
    assert event.kind == "not_available"
    assert DetectorState.objects.get(sensor=detected_sensor).state == "not_available"


def test_silence_is_per_sensor_setting(detected_sensor):
    detected_sensor.detector.silence_seconds = 7200
    detected_sensor.detector.save()
    assert detectors_check(now=START + 19 * STEP + timedelta(minutes=61)).silent == 0


def test_readings_no_task_reached_are_swept(detected_sensor):
    store(detected_sensor, normal_series(5, start=20), first=20)
    result = detectors_check(now=START + 25 * STEP)
    assert result.swept == 1
    assert result.detect.detected == 5
    assert Detection.objects.filter(sensor=detected_sensor).count() == 25
    assert detectors_check(now=START + 25 * STEP).swept == 0


def test_health_says_degraded_without_seeds_or_with_sensors_behind(detected_sensor):
    from detection.health import detection_check
    from detection.models import Baseline

    assert detection_check() == {"state": "up", "sensors": 1, "behind": 0, "seeds": 1}
    store(detected_sensor, normal_series(5, start=20), first=20)  # new readings nobody detects
    DetectorState.objects.filter(sensor=detected_sensor).update(updated_at=START)
    behind = detection_check()
    assert (behind["state"], behind["behind"]) == ("degraded", 1)
    Baseline.objects.all().delete()
    assert "load_baselines" in detection_check()["detail"]
