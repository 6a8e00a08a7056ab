import pytest

from common.exceptions import ApplicationError
from detection.models import Baseline, DetectorSettings
from detection.services.baselines import baseline_create
from detection.services.settings import chosen_baseline_id, detector_settings_ensure, detector_settings_update
from detection.tests.factories import normal_series, seed_baseline
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


@pytest.fixture
def seed(settings):
    settings.DETECTION_DEFAULT_SEED = "seed-small"
    return seed_baseline(name="seed-small", points=200, window=16)


def own(sensor, name, points=64):
    return baseline_create(name=name, kind=Baseline.Kind.BUILT, values=normal_series(points), window=16, sensor=sensor)


def test_changes_are_saved_and_settings_made_with_defaults_first(seed, settings):
    sensor = SensorFactory()
    config = detector_settings_update(sensor=sensor, window=20, warning_level=80, ok_run=3)
    stored = DetectorSettings.objects.get(sensor=sensor)
    assert (stored.window, stored.warning_level, stored.ok_run) == (20, 80, 3)
    assert stored.critical_level == settings.DETECTION_CRITICAL_LEVEL
    assert config.pk == stored.pk


def test_a_seed_or_the_sensors_own_baseline_may_be_chosen(seed):
    sensor = SensorFactory()
    mine = own(sensor, "built-mine")
    assert detector_settings_update(sensor=sensor, window=16, baseline=mine).baseline == mine
    assert detector_settings_update(sensor=sensor, baseline=seed).baseline == seed
    assert detector_settings_update(sensor=sensor, baseline=None).baseline is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window": 3}, "window"),
        ({"warning_level": 150, "critical_level": 120}, "critical_level"),
        ({"critical_level": 50}, "critical_level"),  # below the default warning level of 100
        ({"warning_level": 0, "critical_level": 10}, "warning_level"),
        ({"ok_run": 0}, "ok_run"),
        ({"window": 101}, "window"),  # the default seed has 200 points: m = 101 needs 202
        ({"feedback_enabled": True}, "feedback_enabled"),  # not editable here (feedback_set is)
    ],
)
def test_invalid_changes_are_refused_naming_the_field_and_nothing_is_saved(seed, changes, field):
    sensor = SensorFactory()
    detector_settings_update(sensor=sensor, window=16)
    with pytest.raises(ApplicationError) as error:
        detector_settings_update(sensor=sensor, **changes)
    assert error.value.status_code == 400
    assert list(error.value.fields) == [field]
    assert DetectorSettings.objects.get(sensor=sensor).window == 16


def test_another_sensors_baseline_is_refused(seed):
    sensor, other = SensorFactory(), SensorFactory(key="other")
    theirs = own(other, "built-other")
    with pytest.raises(ApplicationError) as error:
        detector_settings_update(sensor=sensor, baseline=theirs)
    assert error.value.fields == {
        "baseline": [f"Baseline {theirs.pk} belongs to another sensor: choose a seed or one of its own."]
    }


def test_a_window_too_large_for_the_chosen_baseline_is_refused(seed):
    sensor = SensorFactory()
    detector_settings_update(sensor=sensor, window=16, baseline=own(sensor, "built-small", points=40))
    with pytest.raises(ApplicationError) as error:
        detector_settings_update(sensor=sensor, window=21)
    assert error.value.fields == {"window": ["Baseline 'built-small' has 40 points; window 21 needs at least 42 (2m)."]}


def test_settings_are_made_once_with_the_defaults(settings):
    sensors = [SensorFactory(), SensorFactory()]
    made = detector_settings_ensure([sensor.pk for sensor in sensors])
    assert {config.window for config in made.values()} == {settings.DETECTION_WINDOW}
    again = detector_settings_ensure([sensor.pk for sensor in sensors])
    assert {pk: config.pk for pk, config in again.items()} == {pk: config.pk for pk, config in made.items()}
    assert DetectorSettings.objects.count() == 2


def test_the_chosen_baseline_is_the_settings_own_else_the_default_seed(settings):
    sensor = SensorFactory()
    config = detector_settings_ensure([sensor.pk])[sensor.pk]
    assert chosen_baseline_id(config) is None  # before load_baselines
    default = seed_baseline(name="seed-small", points=200, window=16)
    settings.DETECTION_DEFAULT_SEED = "seed-small"
    assert chosen_baseline_id(config) == default.pk
    config.baseline = own(sensor, "mine")
    assert chosen_baseline_id(config) == config.baseline.pk
