from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detection.models import Anomaly, Detection, DetectorState, SensorEvent, Status
from detection.services.detect import detector_cache_clear, readings_detect
from detection.tests.factories import DAY, normal_series, seed_baseline
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def leak_series(n=1400, leak=(900, 1000), rise=15.0):
    values = normal_series(n, start=14 * DAY, seed=1)
    a, b = leak
    values[a:b] += np.linspace(0, rise, b - a)
    return values


def store(sensor, values, *, first=0):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + (first + i) * STEP, value=float(v)) for i, v in enumerate(values)
    )


def statuses(sensor):
    return list(Detection.objects.filter(sensor=sensor).order_by("timestamp").values_list("status", flat=True))


def test_planted_leak_is_critical_inside_and_ok_outside():
    seed_baseline()
    sensor = SensorFactory()
    store(sensor, leak_series())
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


def test_result_in_pieces_with_restarts_equals_one_run():
    seed_baseline()
    one, pieces = SensorFactory(key="one"), SensorFactory(key="pieces")
    values = leak_series()
    store(one, values)
    readings_detect(sensors={one.pk: START})
    for start in range(0, len(values), 333):  # a new worker (empty cache) for each piece
        detector_cache_clear()
        store(pieces, values[start : start + 333], first=start)
        readings_detect(sensors={pieces.pk: START + start * STEP})
    levels = [
        list(Detection.objects.filter(sensor=s).order_by("timestamp").values_list("level", "status"))
        for s in (one, pieces)
    ]
    assert levels[0] == levels[1]
    state = DetectorState.objects.get(sensor=pieces)
    assert state.fed == len(values)


def test_reading_committed_after_a_newer_one_is_late():
    seed_baseline()
    sensor = SensorFactory()
    values = normal_series(300, start=14 * DAY)
    store(sensor, values[:200])
    readings_detect(sensors={sensor.pk: START})
    Reading.objects.create(sensor=sensor, timestamp=START + 150.5 * STEP, value=30.0)
    result = readings_detect(sensors={sensor.pk: START + 150.5 * STEP})
    assert (result.late, result.detected) == (1, 0)
    assert Detection.objects.get(sensor=sensor, timestamp=START + 150.5 * STEP).status == Status.LATE


def test_disabled_sensor_and_missing_baseline_are_skipped():
    sensor = SensorFactory(detection_enabled=False)
    store(sensor, normal_series(10))
    assert readings_detect(sensors={sensor.pk: START}).sensors == 0
    other = SensorFactory()
    store(other, normal_series(10))
    result = readings_detect(sensors={other.pk: START})
    assert result.no_baseline == [other.key]
    assert not Detection.objects.exists()


def test_a_sensor_whose_detector_cannot_be_built_does_not_stop_the_others():
    seed_baseline()  # 14 days: 2,016 points
    good, bad = SensorFactory(key="good"), SensorFactory(key="bad")
    store(good, normal_series(20))
    store(bad, normal_series(20))
    from detection.services.detect import detector_settings_ensure

    detector_settings_ensure([bad.pk])
    bad.detector.window = 1500  # a baseline needs 2m points: 2,016 < 3,000
    bad.detector.save()
    result = readings_detect(sensors={good.pk: START, bad.pk: START})
    assert result.detected == 20
    assert list(result.failed) == ["bad"]
    assert "at least 3000" in result.failed["bad"]
    assert not Detection.objects.filter(sensor=bad).exists()


def test_a_batch_that_fails_half_way_leaves_no_half_fed_detector(monkeypatch):
    seed_baseline()
    sensor = SensorFactory()
    values = normal_series(400, start=14 * DAY)
    store(sensor, values[:200])
    readings_detect(sensors={sensor.pk: START})
    store(sensor, values[200:300], first=200)

    from detection.services import detect

    track = detect._Tracker.track
    calls = []

    def broken(self, detection):  # the 50th reading's bookkeeping fails (say, the database goes away)
        calls.append(detection)
        if len(calls) == 50:
            raise RuntimeError("database gone")
        track(self, detection)

    monkeypatch.setattr(detect._Tracker, "track", broken)
    with pytest.raises(RuntimeError):
        readings_detect(sensors={sensor.pk: START + 200 * STEP})
    monkeypatch.undo()
    readings_detect(sensors={sensor.pk: START + 200 * STEP})
    one = SensorFactory(key="one-go")
    store(one, values[:300])
    readings_detect(sensors={one.pk: START})
    levels = [
        list(Detection.objects.filter(sensor=s).order_by("timestamp").values_list("level", flat=True))
        for s in (sensor, one)
    ]
    assert levels[0] == levels[1]
