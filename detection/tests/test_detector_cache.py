"""The detectors kept in memory (`detection.services.detector_cache`): a detector rebuilt from its stored state,
in a new worker or after a failed batch, detects exactly as one that was never interrupted."""

import pytest

from detection import tracking
from detection.models import Detection, DetectorState
from detection.services.detect import readings_detect
from detection.services.detector_cache import detector_cache_clear, detector_reusable
from detection.services.settings import detector_settings_ensure
from detection.tests.factories import DAY, START, STEP, leak_series, normal_series, readings_store, seed_baseline
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


def test_result_in_pieces_with_restarts_equals_one_run():
    seed_baseline()
    one, pieces = SensorFactory(key="one"), SensorFactory(key="pieces")
    values = leak_series()
    readings_store(one, values)
    readings_detect(sensors={one.pk: START})
    for start in range(0, len(values), 333):  # a new worker (empty cache) for each piece
        detector_cache_clear()
        readings_store(pieces, values[start : start + 333], first=start)
        readings_detect(sensors={pieces.pk: START + start * STEP})
    levels = [
        list(Detection.objects.filter(sensor=s).order_by("timestamp").values_list("level", "status"))
        for s in (one, pieces)
    ]
    assert levels[0] == levels[1]
    state = DetectorState.objects.get(sensor=pieces)
    assert state.fed == len(values)


def test_a_batch_that_fails_half_way_leaves_no_half_fed_detector(monkeypatch):
    seed_baseline()
    sensor = SensorFactory()
    values = normal_series(400, start=14 * DAY)
    readings_store(sensor, values[:200])
    readings_detect(sensors={sensor.pk: START})
    readings_store(sensor, values[200:300], first=200)

    track = tracking.Tracker.track
    calls = []

    def broken(self, timestamp, level, status):  # the 50th reading's bookkeeping fails (say, the database goes away)
        calls.append(timestamp)
        if len(calls) == 50:
            raise RuntimeError("database gone")
        track(self, timestamp, level, status)

    monkeypatch.setattr(tracking.Tracker, "track", broken)
    with pytest.raises(RuntimeError):
        readings_detect(sensors={sensor.pk: START + 200 * STEP})
    monkeypatch.undo()
    readings_detect(sensors={sensor.pk: START + 200 * STEP})
    one = SensorFactory(key="one-go")
    readings_store(one, values[:300])
    readings_detect(sensors={one.pk: START})
    levels = [
        list(Detection.objects.filter(sensor=s).order_by("timestamp").values_list("level", flat=True))
        for s in (sensor, one)
    ]
    assert levels[0] == levels[1]


def test_a_kept_detector_is_reused_only_while_current_and_the_least_recent_is_forgotten(settings):
    seed = seed_baseline()
    settings.DETECTION_CACHE_SENSORS = 2
    sensors = [SensorFactory(key=f"kept-{n}") for n in range(3)]
    for sensor in sensors:
        readings_store(sensor, normal_series(20))
        readings_detect(sensors={sensor.pk: START})  # one batch each: kept-0 is the least recently detected
    configs = detector_settings_ensure([sensor.pk for sensor in sensors])
    states = {state.sensor_id: state for state in DetectorState.objects.all()}
    kept = [detector_reusable(states[sensor.pk], configs[sensor.pk], seed) for sensor in sensors]
    assert kept == [False, True, True]
    states[sensors[1].pk].version += 1  # another worker detected it since
    assert not detector_reusable(states[sensors[1].pk], configs[sensors[1].pk], seed)
    configs[sensors[2].pk].window = DAY // 2  # a new window: the kept detector is not the one wanted
    assert not detector_reusable(states[sensors[2].pk], configs[sensors[2].pk], seed)
