"""Baseline selection (`detection.services.baselines.selection`)."""

import pytest

from detection.models import Baseline, DetectorSettings, SystemEvent
from detection.services.baselines import baseline_build, baselines_load, baselines_select, stats_distance
from detection.services.settings import detector_settings_ensure
from detection.tests.factories import DAY, START, STEP, like_seed, readings_store, system_events
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


@pytest.mark.parametrize(
    ("name", "refused"), [("low", set()), ("mid", {"seed-low"}), ("high", {"seed-low", "seed-mid"})]
)
def test_selection_picks_the_seed_the_data_was_generated_like(name, refused):
    baselines_load()
    sensor = SensorFactory(key=f"like-{name}")
    readings_store(sensor, like_seed(name))
    detector_settings_ensure([sensor.pk])
    result = baselines_select()
    (outcome,) = result.outcomes
    assert outcome["baseline"] == f"seed-{name}"
    # Seeds that flag any reading are refused, however near their stats (low and mid data fit the larger seeds
    # too: their max distance is larger; the nearest stats decide among those).
    assert set(outcome["refused"]) == refused
    config = DetectorSettings.objects.get(pk=sensor.pk)
    assert config.baseline.name == f"seed-{name}"
    assert config.last_selection_at is not None
    (event,) = system_events()
    assert event.kind == SystemEvent.Kind.ALERT_SUCCESS
    assert f"seed-{name}" in event.message
    assert event.sensor == sensor


def test_the_nearest_stats_win_among_fitting_seeds():
    baselines_load()
    seeds = {b.name: b for b in Baseline.objects.all()}
    # sqrt((Δ mean)² + (Δ sd)²): in the readings' unit.
    assert stats_distance(23.92, 115.11, seeds["seed-low"]) == pytest.approx(0, abs=0.01)
    assert stats_distance(33.70, 742.79, seeds["seed-mid"]) < stats_distance(33.70, 742.79, seeds["seed-high"])


def test_selection_keeps_the_current_baseline_when_every_seed_raises_warnings():
    baselines_load()
    sensor = SensorFactory(key="odd")
    readings_store(sensor, like_seed("mid") + 300.0)  # far above every seed
    config = detector_settings_ensure([sensor.pk])[sensor.pk]
    mid = Baseline.objects.get(name="seed-mid")
    DetectorSettings.objects.filter(pk=config.pk).update(baseline=mid)
    (outcome,) = baselines_select().outcomes
    assert outcome["outcome"] == "no_fit"
    assert set(outcome["refused"]) == {"seed-low", "seed-mid", "seed-high"}
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == mid
    (event,) = system_events()
    assert event.kind == SystemEvent.Kind.ALERT_CRITICAL
    assert "every seed raised warnings" in event.message
    assert "keeps seed-mid" in event.message


def test_selection_uses_readings_since_the_last_selection_and_skips_fewer_than_m():
    baselines_load()
    sensor = SensorFactory(key="quiet")
    values = like_seed("low")
    readings_store(sensor, values)
    detector_settings_ensure([sensor.pk])
    (first,) = baselines_select().outcomes
    assert (first["outcome"], first["points"]) == ("changed", len(values))  # the first time: all of them
    # As if the last selection ran just before the last 100 readings: only those are new, fewer than m.
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_selection_at=START + (len(values) - 101) * STEP)
    (outcome,) = baselines_select().outcomes
    assert outcome == {
        "sensor": "quiet",
        "outcome": "skipped",
        "reason": "100 readings to use, fewer than m=144",
        "points": 100,
    }
    assert DetectorSettings.objects.get(pk=sensor.pk).last_selection_at > START + len(values) * STEP
    event = system_events()[-1]
    assert (event.kind, event.sensor) == (SystemEvent.Kind.INFO, sensor)
    assert "skipped quiet: 100 readings to use" in event.message


def test_selection_keeps_a_sensors_own_baseline_while_it_fits():
    baselines_load()
    sensor = SensorFactory(key="own")
    values = like_seed("mid", days=8, seed=11)
    readings_store(sensor, values)
    built = baseline_build(sensor=sensor, points=4 * DAY)
    (outcome,) = baselines_select().outcomes
    assert (outcome["outcome"], outcome["baseline"]) == ("kept", built.name)
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == built
    assert "keeps its own baseline" in system_events()[0].message


def test_selection_replaces_a_sensors_own_baseline_that_raises_warnings_with_a_seed():
    baselines_load()
    sensor = SensorFactory(key="changed")
    readings_store(sensor, like_seed("low", days=5, seed=12))
    built = baseline_build(sensor=sensor, points=5 * DAY)
    # Since the last selection the sensor behaves like the mid seed: its own (low) baseline flags that.
    readings_store(sensor, like_seed("mid"), first=5 * DAY)
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_selection_at=START + (5 * DAY - 1) * STEP)
    (outcome,) = baselines_select().outcomes
    assert (outcome["outcome"], outcome["baseline"]) == ("changed", "seed-mid")
    assert list(outcome["own_refused"]) == [built.name]
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline.name == "seed-mid"
