"""Cleaning, the shipped seeds, building a baseline, and the selection and augmentation services."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.conf import settings as django_settings

from common.exceptions import ApplicationError
from detection import engine
from detection.data import generate_seeds
from detection.models import Anomaly, Baseline, DetectorSettings, SystemEvent
from detection.services.baselines import (
    SEEDS_FILE,
    baseline_build,
    baseline_create,
    baselines_augment,
    baselines_load,
    baselines_select,
    stats_distance,
)
from detection.services.detect import detector_settings_ensure
from detection.tests.factories import DAY, normal_series
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def store(sensor, values, *, first=0, order=None):
    rows = [Reading(sensor=sensor, timestamp=START + (first + i) * STEP, value=float(v)) for i, v in enumerate(values)]
    if order is not None:
        rows = [rows[i] for i in order]
    Reading.objects.bulk_create(rows)


def like_seed(name, *, days=5, seed=7):
    """Readings generated as the seed `name` was, with another random seed."""
    return generate_seeds.series(name, days=days, rng=np.random.default_rng(seed))


def events(kind=None):
    query = SystemEvent.objects.order_by("id")
    return list(query.filter(kind=kind) if kind else query)


# --- cleaning -----------------------------------------------------------------------------------------------------


def test_cleaning_removes_planted_discords_and_keeps_the_rest_in_order():
    series = normal_series(10 * DAY, seed=3)
    planted = [(400, 420), (1000, 1030)]
    for start, stop in planted:
        series[start:stop] += 60.0
    cleaned = engine.clean(series, DAY)
    assert cleaned.removed, "the planted stretches are discords"
    for start, stop in planted:  # each planted stretch is inside a removed range...
        assert any(a <= start and stop <= b for a, b in cleaned.removed), (start, stop, cleaned.removed)
    for a, b in cleaned.removed:  # ...and nothing is removed away from them ([i − m, i + 2m) around a discord)
        assert any(a < stop + 2 * DAY and start - DAY <= b for start, stop in planted), (a, b)
    keep = np.ones(len(series), dtype=bool)
    for a, b in cleaned.removed:
        keep[a:b] = False
    np.testing.assert_array_equal(cleaned.values, series[keep])  # the rest, joined in its order
    assert cleaned.values.max() < 60.0


def test_cleaning_fewer_than_m_points_is_a_clear_error():
    with pytest.raises(engine.SeriesError, match="cleaning needs at least m=144 points, got 143"):
        engine.clean(normal_series(DAY - 1), DAY)


def planted_series():
    series = normal_series(10 * DAY, seed=3)
    series[400:420] += 60.0
    series[1000:1030] -= 40.0
    return series


@pytest.mark.parametrize(("scale", "offset"), [(1e-4, 0.0), (1e-4, -3.0), (1.0, -100.0), (1e3, 1e6), (1e4, 0.0)])
def test_cleaning_removes_the_same_stretches_at_any_scale_and_offset(scale, offset):
    series = planted_series()
    reference = engine.clean(series, DAY)
    scaled = engine.clean(series * scale + offset, DAY)
    assert scaled.removed == reference.removed != []
    assert scaled.accepted_distance == pytest.approx(reference.accepted_distance * scale, rel=1e-9)
    np.testing.assert_allclose(scaled.values, reference.values * scale + offset, rtol=1e-12)


def test_the_legacy_rule_restores_the_absolute_cut_of_2000():
    """Values around 30,000: every top discord is above 2000, so the old rule cuts the whole series away."""
    series = planted_series() * 1000.0
    assert engine.clean(series, DAY).removed == engine.clean(planted_series(), DAY).removed
    legacy = engine.clean(series, DAY, rule="legacy")
    assert legacy.accepted_distance == engine.LEGACY_CLEAN_CUT
    assert len(legacy.values) < 2 * DAY  # not even a baseline left
    with pytest.raises(ValueError, match="relative, legacy"):
        engine.clean(series, DAY, rule="absolute")


def test_an_unknown_cleaning_rule_stops_the_settings_from_loading():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "DETECTION_CLEANING": "absolute"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert 'DETECTION_CLEANING must be "relative" or "legacy", not \'absolute\'.' in result.stderr


def test_discords_are_judged_by_their_spread_even_when_most_are_equal():
    # Quantized readings: more than half of the top distances equal, so the MAD is 0. The mean deviation then
    # gives the spread, and only the far discord is above the accepted distance, not every one above the median.
    distances = [5.0] * 8 + [5.1, 5.2, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert 9.0 < engine.discord_threshold(distances) < 10.0
    assert engine.discord_threshold([5.0] * 15) == 5.0  # nothing is above equal distances


def test_rounding_noise_in_a_constant_series_is_not_cleaned():
    series = 1e6 + np.random.default_rng(3).normal(0, 1e-4, 6 * DAY)  # constant to a ten-billionth
    series[300:305] += 4e-3  # and a bump of four billionths
    cleaned = engine.clean(series, DAY)
    distances = [distance for _, distance in cleaned.discords]
    assert max(distances) > engine.discord_threshold(distances)  # among noise, the bump is an outlier...
    assert cleaned.removed == []  # ...but not a discord: below the noise floor
    assert cleaned.accepted_distance == engine.noise_floor(series, DAY)


# --- seeds --------------------------------------------------------------------------------------------------------


def test_the_shipped_seeds_are_what_the_generator_makes():
    assert json.loads(SEEDS_FILE.read_text()) == json.loads(json.dumps(generate_seeds.seeds()))


def test_loading_the_seeds_computes_their_stats_and_is_idempotent():
    result = baselines_load()
    assert sorted(result.created) == ["seed-high", "seed-low", "seed-mid"]
    stats = {
        b.name: (b.kind, b.points, b.window, round(b.mean, 2), round(b.variance, 1)) for b in Baseline.objects.all()
    }
    assert stats == {
        "seed-low": ("seed", 2016, 144, 23.92, 115.1),
        "seed-mid": ("seed", 2016, 144, 33.70, 742.8),
        "seed-high": ("seed", 2016, 144, 37.95, 1808.5),
    }
    max_distances = {b.name: b.max_distance for b in Baseline.objects.all()}
    assert all(d > 0 for d in max_distances.values())
    ids = set(Baseline.objects.values_list("pk", flat=True))
    again = baselines_load()
    assert (again.created, again.replaced, sorted(again.unchanged)) == ([], [], ["seed-high", "seed-low", "seed-mid"])
    assert set(Baseline.objects.values_list("pk", flat=True)) == ids


def test_a_changed_seed_is_refused_unless_replaced_and_its_users_follow(tmp_path):
    baselines_load()
    sensor = SensorFactory()
    detector_settings_ensure([sensor.pk])
    old = Baseline.objects.get(name="seed-low")
    DetectorSettings.objects.filter(pk=sensor.pk).update(baseline=old)
    data = json.loads(SEEDS_FILE.read_text())
    data["baselines"][0]["values"][10] += 1.0
    changed = tmp_path / "seeds.json"
    changed.write_text(json.dumps(data))
    with pytest.raises(ApplicationError, match="'seed-low' is stored with other values or window; use --replace"):
        baselines_load(path=changed)
    assert Baseline.objects.get(name="seed-low").pk == old.pk
    result = baselines_load(path=changed, replace=True)
    assert result.replaced == ["seed-low"]
    new = Baseline.objects.get(name="seed-low")
    assert new.pk != old.pk  # a new row: workers cache seeded detectors by baseline id
    assert new.array()[10] == old.array()[10] + 1.0
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == new


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"baselines": []}', 'expected {"format": "sensorhub-baselines/1"'),
        ('{"format": "sensorhub-baselines/1", "baselines": []}', "no baselines in the file"),
        (
            '{"format": "sensorhub-baselines/1", "baselines": [{"name": "s", "window": 144, "values": [1, 2, 3]}]}',
            "baseline 1 (s): a baseline needs at least 288 points",
        ),
        (
            '{"format": "sensorhub-baselines/1", "baselines": [{"name": "s", "window": 4, "values": [1, "x"]}]}',
            "'values' must be a list of finite numbers",
        ),
        (
            '{"format": "sensorhub-baselines/1", "baselines": '
            '[{"name": "s", "window": 4, "values": [2, 2, 2, 2, 2, 2, 2, 2]}]}',
            "baseline 1 (s): a seed must vary; every value is 2",
        ),
    ],
)
def test_a_bad_seeds_file_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ApplicationError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        baselines_load(path=path)
    assert "\n" not in info.value.detail
    assert not Baseline.objects.exists()


# --- built from the first readings -----------------------------------------------------------------------------------


def test_build_uses_the_first_readings_cleaned_and_becomes_the_sensors_baseline():
    sensor = SensorFactory(key="tank")
    values = normal_series(7 * DAY, seed=5)
    values[300:310] += 50.0  # a discord among the first readings: cleaned away
    store(sensor, values, order=np.random.default_rng(1).permutation(len(values)))  # stored in any order
    baseline = baseline_build(sensor=sensor, points=6 * DAY)
    expected = engine.clean(values[: 6 * DAY], DAY).values
    assert len(expected) < 6 * DAY
    assert expected.max() < 50.0
    np.testing.assert_array_equal(baseline.array(), expected)
    assert (baseline.kind, baseline.sensor, baseline.window) == (Baseline.Kind.BUILT, sensor, DAY)
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == baseline


def test_build_refuses_fewer_than_2m_readings():
    sensor = SensorFactory(key="new")
    store(sensor, normal_series(2 * DAY - 1))
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
    store(sensor, values)
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
    store(sensor, values)
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
    store(sensor, np.full(3 * DAY, -4.25))
    baseline = baseline_build(sensor=sensor, points=3 * DAY)
    assert (baseline.points, baseline.mean, baseline.variance) == (3 * DAY, -4.25, 0.0)
    assert baseline.max_distance == engine.noise_floor(baseline.array(), DAY)
    detector = engine.detector_for(baseline.array(), DAY, warning=120, critical=200, max_distance=baseline.max_distance)
    verdicts = detector.feed_all([-4.25] * DAY + [-4.25, -4.0])
    assert [v.status for v in verdicts[DAY:]] == ["ok", "critical"]


# --- selection ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "refused"), [("low", set()), ("mid", {"seed-low"}), ("high", {"seed-low", "seed-mid"})]
)
def test_selection_picks_the_seed_the_data_was_generated_like(name, refused):
    baselines_load()
    sensor = SensorFactory(key=f"like-{name}")
    store(sensor, like_seed(name))
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
    (event,) = events()
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
    store(sensor, like_seed("mid") + 300.0)  # far above every seed
    config = detector_settings_ensure([sensor.pk])[sensor.pk]
    mid = Baseline.objects.get(name="seed-mid")
    DetectorSettings.objects.filter(pk=config.pk).update(baseline=mid)
    (outcome,) = baselines_select().outcomes
    assert outcome["outcome"] == "no_fit"
    assert set(outcome["refused"]) == {"seed-low", "seed-mid", "seed-high"}
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == mid
    (event,) = events()
    assert event.kind == SystemEvent.Kind.ALERT_CRITICAL
    assert "every seed raised warnings" in event.message
    assert "keeps seed-mid" in event.message


def test_selection_uses_readings_since_the_last_selection_and_skips_fewer_than_m():
    baselines_load()
    sensor = SensorFactory(key="quiet")
    values = like_seed("low")
    store(sensor, values)
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
    event = events()[-1]
    assert (event.kind, event.sensor) == (SystemEvent.Kind.INFO, sensor)
    assert "skipped quiet: 100 readings to use" in event.message


def test_selection_keeps_a_sensors_own_baseline_while_it_fits():
    baselines_load()
    sensor = SensorFactory(key="own")
    values = like_seed("mid", days=8, seed=11)
    store(sensor, values)
    built = baseline_build(sensor=sensor, points=4 * DAY)
    (outcome,) = baselines_select().outcomes
    assert (outcome["outcome"], outcome["baseline"]) == ("kept", built.name)
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == built
    assert "keeps its own baseline" in events()[0].message


def test_selection_replaces_a_sensors_own_baseline_that_raises_warnings_with_a_seed():
    baselines_load()
    sensor = SensorFactory(key="changed")
    store(sensor, like_seed("low", days=5, seed=12))
    built = baseline_build(sensor=sensor, points=5 * DAY)
    # Since the last selection the sensor behaves like the mid seed: its own (low) baseline flags that.
    store(sensor, like_seed("mid"), first=5 * DAY)
    DetectorSettings.objects.filter(pk=sensor.pk).update(last_selection_at=START + (5 * DAY - 1) * STEP)
    (outcome,) = baselines_select().outcomes
    assert (outcome["outcome"], outcome["baseline"]) == ("changed", "seed-mid")
    assert list(outcome["own_refused"]) == [built.name]
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline.name == "seed-mid"


# --- augmentation ---------------------------------------------------------------------------------------------------


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
    store(sensor, history, order=np.random.default_rng(2).permutation(len(history)))  # stored in any order
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
    (event,) = events()
    assert event.kind == SystemEvent.Kind.ALERT_SUCCESS
    assert new.name in event.message


def test_augmentation_leaves_out_anomalies_and_readings_before_the_last_run():
    sensor = SensorFactory(key="aug2")
    old = own_baseline(sensor)
    history = normal_series(6 * DAY, start=4 * DAY, seed=23)
    store(sensor, history)
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
    store(sensor, normal_series(DAY - 1))
    (outcome,) = baselines_augment().outcomes
    assert outcome["outcome"] == "skipped"
    assert DetectorSettings.objects.get(pk=sensor.pk).baseline == old
    assert Baseline.objects.count() == 1
    assert events()[0].kind == SystemEvent.Kind.INFO
