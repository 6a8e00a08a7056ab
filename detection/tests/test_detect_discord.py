"""The batch service with the discord method, the default for new sensors: no baseline needed, state kept as
arrays, detection in pieces (any worker) equal to one run, switching methods."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detection.models import Anomaly, Baseline, Detection, DetectorSettings, DetectorState, Method, Status
from detection.services.detect import readings_detect
from detection.services.detector_cache import detector_cache_clear
from detection.services.settings import detector_settings_update
from detection.tests.factories import DAY, normal_series, seed_baseline
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def store(sensor, values, *, first=0, step=STEP):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + (first + i) * step, value=float(v)) for i, v in enumerate(values)
    )


def detected(sensor):
    return list(Detection.objects.filter(sensor=sensor).order_by("timestamp").values_list("status", "level"))


def spiky_series(n=1200):
    values = normal_series(n, seed=4)
    values[1000:1004] += 25.0
    return values


@pytest.fixture(autouse=True)
def _learning(settings):
    """A day of 10-minute readings to learn from (the default is a day of 5-minute readings)."""
    settings.DETECTION_DISCORD_LEARNING = DAY


def test_new_sensors_use_the_discord_method_without_any_baseline():
    assert not Baseline.objects.exists()  # load_baselines never ran
    sensor = SensorFactory()
    store(sensor, spiky_series())
    result = readings_detect(sensors={sensor.pk: START})
    assert result.no_baseline == []
    assert result.detected == 1200
    assert DetectorSettings.objects.get(sensor=sensor).method == Method.DISCORD
    state = DetectorState.objects.get(sensor=sensor)
    assert state.method == Method.DISCORD
    assert state.baseline_id is None
    got = detected(sensor)
    assert {status for status, _ in got[:DAY]} == {Status.UNDEFINED}  # learning
    assert got[DAY][0] != Status.UNDEFINED
    assert got[-1][0] == Status.OK
    assert {status for status, _ in got[1000:1004]} & {Status.WARNING, Status.CRITICAL}
    anomaly = Anomaly.objects.get(sensor=sensor)
    assert START + 1000 * STEP <= anomaly.started_at < START + 1004 * STEP


def test_in_pieces_by_fresh_workers_equals_one_run():
    one, pieces = SensorFactory(key="one"), SensorFactory(key="pieces")
    values = spiky_series()
    store(one, values)
    readings_detect(sensors={one.pk: START})
    for start in range(0, len(values), 250):
        store(pieces, values[start : start + 250], first=start)
        detector_cache_clear()  # each piece in a new worker: rebuilt from the stored arrays
        readings_detect(sensors={pieces.pk: START + start * STEP})
    assert detected(pieces) == detected(one)


def test_switching_method_restarts_from_the_recent_values():
    seed_baseline()
    sensor = SensorFactory()
    values = normal_series(3 * DAY, seed=2)
    store(sensor, values[: 2 * DAY])
    readings_detect(sensors={sensor.pk: START})
    detector_settings_update(sensor=sensor, method=Method.BASELINE, window=DAY)
    store(sensor, values[2 * DAY :], first=2 * DAY)
    readings_detect(sensors={sensor.pk: START + 2 * DAY * STEP})
    state = DetectorState.objects.get(sensor=sensor)
    assert state.method == Method.BASELINE
    assert state.baseline_id is not None
    assert bytes(state.method_state) == b""
    # The baseline method replays the last m values of the discord history: levels are defined at once.
    statuses = [status for status, _ in detected(sensor)[2 * DAY :]]
    assert Status.UNDEFINED not in statuses


def test_gaps_in_stored_readings_start_a_new_segment():
    sensor = SensorFactory()
    values = normal_series(900, seed=6)
    store(sensor, values[:600])
    # Six hours without readings (36 steps), then the sensor resumes.
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + (600 + i) * STEP + timedelta(hours=6), value=float(v))
        for i, v in enumerate(values[600:])
    )
    readings_detect(sensors={sensor.pk: START})
    distances = list(Detection.objects.filter(sensor=sensor).order_by("timestamp").values_list("distance", flat=True))
    # No subsequence spans the pause: the window's distance is undefined until one fits after it.
    assert distances[599] is not None
    assert distances[600] is None
    assert distances[-1] is not None
    assert Status.UNDEFINED not in [status for status, _ in detected(sensor)[DAY:]]  # the level stays defined


def test_scaled_readings_get_the_same_statuses():
    plain, scaled = SensorFactory(key="plain"), SensorFactory(key="scaled")
    values = spiky_series()
    store(plain, values)
    store(scaled, np.asarray(values) * 1000 + 1e6)
    readings_detect(sensors={plain.pk: START, scaled.pk: START})
    assert [s for s, _ in detected(plain)] == [s for s, _ in detected(scaled)]


def test_feedback_mode_is_refused_for_the_discord_method():
    from common.exceptions import ApplicationError
    from detection.services.feedback import feedback_set

    sensor = SensorFactory()
    store(sensor, normal_series(200))
    with pytest.raises(ApplicationError) as refused:
        feedback_set(sensor=sensor, enabled=True)
    assert refused.value.code == "not_applicable"
    assert refused.value.status_code == 409


def test_a_window_too_long_for_the_discord_history_is_refused():
    from common.exceptions import ApplicationError

    sensor = SensorFactory()
    with pytest.raises(ApplicationError) as refused:
        detector_settings_update(sensor=sensor, window=301)
    assert "at most 300" in refused.value.fields["window"][0]
    assert detector_settings_update(sensor=sensor, window=300).window == 300
