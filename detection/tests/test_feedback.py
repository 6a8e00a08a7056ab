from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from common.exceptions import ApplicationError
from detection.models import Baseline, Detection, DetectorSettings, DetectorState, Status
from detection.services.baselines import baseline_create
from detection.services.detect import readings_detect
from detection.services.feedback import FEEDBACK_MAX_POINTS, feedback_set
from detection.services.settings import detector_settings_update
from detection.tests.factories import DAY, normal_series, seed_baseline
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
M = 16  # a small window keeps the service tests fast; the end-to-end test uses the default m


def store(sensor, values, *, first=0):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + (first + i) * STEP, value=float(v)) for i, v in enumerate(values)
    )


@pytest.fixture
def seed(settings):
    settings.DETECTION_DEFAULT_SEED = "seed-small"
    return seed_baseline(name="seed-small", points=10 * M, window=M)


@pytest.fixture
def sensor(seed):
    sensor = SensorFactory(key="tank.level")
    detector_settings_update(sensor=sensor, window=M)
    return sensor


def test_refused_with_fewer_than_m_readings(sensor):
    store(sensor, np.arange(M - 1, dtype=float))
    with pytest.raises(ApplicationError) as error:
        feedback_set(sensor=sensor, enabled=True)
    assert (error.value.status_code, error.value.code) == (409, "not_enough_readings")
    assert error.value.detail == f"Feedback mode needs at least {M} readings of tank.level (its window m); it has 15."
    assert not Baseline.objects.filter(kind=Baseline.Kind.FEEDBACK).exists()
    assert DetectorSettings.objects.get(sensor=sensor).feedback_enabled is False


def test_enabling_builds_the_baseline_in_use_followed_by_the_last_2m_readings(sensor, seed):
    values = np.arange(100, dtype=float) + 0.5
    store(sensor, values)
    config = feedback_set(sensor=sensor, enabled=True)
    assert config.feedback_enabled is True
    feedback = config.feedback_baseline
    assert (feedback.kind, feedback.sensor, feedback.parent, feedback.window) == ("feedback", sensor, seed, M)
    assert feedback.name.startswith("feedback-tank.level-2")
    assert feedback.name.endswith("Z")
    np.testing.assert_array_equal(feedback.array(), np.concatenate([seed.array(), values[-2 * M :]]))
    config.refresh_from_db()
    assert config.active_baseline_id() == feedback.pk


def test_points_take_the_newest_readings_oldest_first_or_all_there_are(sensor, seed):
    # Stored out of order: the baseline must follow the timestamps, not the insertion order.
    values = np.linspace(1.0, 40.0, 40)
    store(sensor, values[20:], first=20)
    store(sensor, values[:20])
    config = feedback_set(sensor=sensor, enabled=True, points=25)
    np.testing.assert_array_equal(config.feedback_baseline.array()[-25:], values[-25:])
    assert config.feedback_baseline.points == seed.points + 25
    config = feedback_set(sensor=sensor, enabled=True, points=FEEDBACK_MAX_POINTS)
    assert config.feedback_baseline.points == seed.points + 40


@pytest.mark.parametrize("points", [M - 1, FEEDBACK_MAX_POINTS + 1])
def test_points_outside_m_and_the_limit_are_refused(sensor, points):
    store(sensor, normal_series(3 * M))
    with pytest.raises(ApplicationError) as error:
        feedback_set(sensor=sensor, enabled=True, points=points)
    assert error.value.status_code == 400
    assert list(error.value.fields) == ["points"]


def test_feedback_starts_from_the_chosen_baseline_and_never_piles_on_itself(sensor, seed):
    chosen = baseline_create(
        name="built-tank", kind=Baseline.Kind.BUILT, values=normal_series(6 * M, seed=7), window=M, sensor=sensor
    )
    detector_settings_update(sensor=sensor, baseline=chosen)
    store(sensor, normal_series(3 * M))
    first = feedback_set(sensor=sensor, enabled=True).feedback_baseline
    second = feedback_set(sensor=sensor, enabled=True).feedback_baseline
    assert first.parent == second.parent == chosen
    assert second.pk != first.pk
    assert second.points == first.points == chosen.points + 2 * M


def test_disabling_goes_back_to_the_chosen_baseline_and_keeps_the_feedback_one(sensor):
    store(sensor, normal_series(3 * M))
    feedback = feedback_set(sensor=sensor, enabled=True).feedback_baseline
    config = feedback_set(sensor=sensor, enabled=False)
    config.refresh_from_db()
    assert config.feedback_enabled is False
    assert config.feedback_baseline == feedback
    assert config.active_baseline_id() is None  # the default seed again
    assert Baseline.objects.filter(pk=feedback.pk).exists()


def test_without_any_baseline_enabling_is_refused(settings):
    settings.DETECTION_DEFAULT_SEED = "missing"
    sensor = SensorFactory()
    store(sensor, normal_series(3 * DAY))
    with pytest.raises(ApplicationError) as error:
        feedback_set(sensor=sensor, enabled=True)
    assert (error.value.status_code, error.value.code) == (409, "no_baseline")


def flagged(sensor, since):
    return list(
        Detection.objects.filter(sensor=sensor, timestamp__gte=since)
        .order_by("timestamp")
        .values_list("status", flat=True)
    )


def test_after_feedback_readings_like_the_recent_ones_no_longer_raise_alarms():
    """End to end with the default window: a level shift the seed has never seen is flagged; once an operator
    enables feedback, the same kind of readings are ok, while a leak on top of the new level is still found."""
    seed_baseline()  # seed-mid, the default seed: a daily cycle around 30
    sensor = SensorFactory()
    shifted = normal_series(3 * DAY, start=14 * DAY, mean=40.0, seed=2)
    store(sensor, shifted)
    readings_detect(sensors={sensor.pk: START})
    before = flagged(sensor, START + (DAY + 1) * STEP)
    assert before.count(Status.OK) < len(before) // 10  # nearly all warning/critical

    config = feedback_set(sensor=sensor, enabled=True)
    assert config.feedback_baseline.points == 14 * DAY + 2 * DAY

    more = normal_series(3 * DAY, start=17 * DAY, mean=40.0, seed=3)
    store(sensor, more, first=3 * DAY)
    readings_detect(sensors={sensor.pk: START + 3 * DAY * STEP})
    after = flagged(sensor, START + 3 * DAY * STEP)
    # Defined at once: the detector restarted on the feedback baseline and replayed the last m values.
    assert after == [Status.OK] * (3 * DAY)
    assert DetectorState.objects.get(sensor=sensor).baseline_id == config.feedback_baseline_id

    leak = normal_series(2 * DAY, start=20 * DAY, mean=40.0, seed=4)
    leak[50:150] += np.linspace(0, 40, 100)
    store(sensor, leak, first=6 * DAY)
    readings_detect(sensors={sensor.pk: START + 6 * DAY * STEP})
    assert {Status.WARNING, Status.CRITICAL} & set(flagged(sensor, START + 6 * DAY * STEP))
