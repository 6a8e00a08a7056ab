"""Real input is never refused for being real (docs/detection.md, "Real input").

Files with repeated timestamps, unsorted rows, gaps and an irregular cadence, constant stretches, negative values and
values at any scale are evaluated, through the services and through `manage.py evaluate_detection`; only what
cannot be used is refused, in one line. The database paths (build, selection, augmentation, feedback) take gaps,
constant stretches and any scale. Statuses do not depend on the readings' unit: multiplying a series by 1,000 and
adding 10⁶ changes none.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from common.exceptions import ApplicationError
from detection import engine
from detection.data import generate_seeds
from detection.models import Baseline, DetectorSettings
from detection.services.baselines import baseline_build, baseline_create, baselines_augment, baselines_select
from detection.services.evaluation import (
    detection_evaluate,
    detector_run,
    evaluation_score,
    series_from_rows,
    series_read_csv,
    windows_read_json,
)
from detection.services.feedback import feedback_set
from detection.services.settings import detector_settings_ensure, detector_settings_update
from detection.tests.factories import DAY
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.usefixtures("baseline_method")  # the discord method: test_real_input_discord.py

M = 24
N = 720
TRAIN = 144
START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
WARNING, CRITICAL = 150.0, 300.0  # as in test_evaluation: far above normal levels, far below a spike's
SPIKE, LABEL = 400, (395, 405)


def at(index: int) -> datetime:
    return START + index * STEP


def values_normal() -> np.ndarray:
    """A 24-point cycle with a little noise and one spike, labeled (m = 24: fast)."""
    rng = np.random.default_rng(7)
    t = np.arange(N)
    values = 20 + 5 * np.sin(2 * np.pi * t / M) + rng.normal(0, 0.3, N)
    values[SPIKE] += 40.0
    return values


def rows_of(values, stamps=None) -> list[tuple[str, str]]:
    stamps = [at(i) for i in range(len(values))] if stamps is None else stamps
    return [(ts.isoformat(), repr(float(v))) for ts, v in zip(stamps, values, strict=True)]


def with_duplicates():
    """Three timestamps appear twice: right after the first row, at the very end of the file, and with another
    UTC offset. The later rows hold values that would be flagged if they were kept."""
    rows = rows_of(values_normal())
    rows.insert(201, (at(200).isoformat(), "1e9"))
    rows.append((at(300).isoformat(), "-1e9"))
    rows.insert(460, (at(450).astimezone(timezone(timedelta(hours=2))).isoformat(), "777"))
    return rows


def unsorted():
    rows = rows_of(values_normal())
    order = np.random.default_rng(3).permutation(len(rows))
    return [rows[i] for i in order]


def gaps_and_irregular_cadence():
    """A gap of 40 readings (6 h 40 min) and timestamps off the 10-minute grid by up to 3 minutes."""
    jitter = np.random.default_rng(5).integers(-180, 181, N)
    stamps = [at(i) + timedelta(seconds=int(jitter[i])) for i in range(N)]
    keep = [i for i in range(N) if not 250 <= i < 290]
    return rows_of(values_normal()[keep], [stamps[i] for i in keep])


def constant_stretches():
    values = values_normal()
    values[40:80] = 20.0  # in the training part
    values[200:300] = 20.0  # in the streamed part
    return rows_of(values)


def transformed(scale: float, offset: float):
    return lambda: rows_of(values_normal() * scale + offset)


PROPERTIES = {
    "duplicate timestamps": with_duplicates,
    "unsorted rows": unsorted,
    "gaps and irregular cadence": gaps_and_irregular_cadence,
    "constant stretches": constant_stretches,
    "negative values": transformed(1.0, -100.0),
    "values around 1e-3": transformed(1e-4, 0.0),
    "values around 1e6 with an offset": transformed(1_000.0, 1e6),
}
DUPLICATES = {"duplicate timestamps": 3}
UNSORTED = {"unsorted rows"}


def write(tmp_path, rows, *, header="timestamp,value") -> tuple:
    csv_path, labels = tmp_path / "series.csv", tmp_path / "labels.json"
    csv_path.write_text("\n".join([header, *(f"{ts},{value}" for ts, value in rows)]) + "\n")
    labels.write_text(json.dumps([[at(LABEL[0]).isoformat(), at(LABEL[1]).isoformat()]]))
    return csv_path, labels


def run_command(*args) -> str:
    out = StringIO()
    call_command("evaluate_detection", *map(str, args), stdout=out)
    return out.getvalue()


OPTIONS = ("--train", TRAIN, "--window", M, "--warning", WARNING, "--critical", CRITICAL)


@pytest.fixture(scope="module")
def reference():
    """The plain series' evaluation, which every property below must leave as it is where it can."""
    values = values_normal()
    return detection_evaluate(
        method="baseline",  # module-scoped: the baseline_method fixture is not in force yet
        timestamps=[at(i) for i in range(N)],
        values=values,
        windows=[(at(LABEL[0]), at(LABEL[1]))],
        train=TRAIN,
        window=M,
        warning=WARNING,
        critical=CRITICAL,
    )


@pytest.mark.parametrize("name", PROPERTIES)
def test_real_files_are_evaluated_through_the_services(tmp_path, name, reference):
    csv_path, labels = write(tmp_path, PROPERTIES[name]())
    series = series_read_csv(csv_path)
    assert (series.duplicates, series.unsorted) == (DUPLICATES.get(name, 0), name in UNSORTED)
    assert all(a < b for a, b in zip(series.timestamps, series.timestamps[1:], strict=False))
    result = detection_evaluate(
        timestamps=series.timestamps,
        values=series.values,
        windows=windows_read_json(labels),
        train=TRAIN,
        window=M,
        warning=WARNING,
        critical=CRITICAL,
        duplicates=series.duplicates,
        unsorted=series.unsorted,
    )
    assert result.windows[0].found  # the spike is found in every one of them
    assert result.as_dict()["input"] == {"duplicates": DUPLICATES.get(name, 0), "unsorted": name in UNSORTED}
    if name in ("duplicate timestamps", "unsorted rows"):  # the same readings as the plain series
        np.testing.assert_array_equal(series.values, values_normal())
        assert result.as_dict()["windows"] == reference.as_dict()["windows"]
        assert result.false_alarms == reference.false_alarms
    if name in ("negative values", "values around 1e-3", "values around 1e6 with an offset"):
        assert (result.found, len(result.false_alarms), result.flagged, result.critical_readings) == (
            reference.found,
            len(reference.false_alarms),
            reference.flagged,
            reference.critical_readings,
        )


@pytest.mark.parametrize("name", PROPERTIES)
def test_real_files_are_evaluated_by_the_command(tmp_path, name):
    csv_path, labels = write(tmp_path, PROPERTIES[name]())
    data = json.loads(run_command(csv_path, "--labels", labels, *OPTIONS, "--json"))
    assert data["windows"][0]["found"] is True
    assert data["input"] == {"duplicates": DUPLICATES.get(name, 0), "unsorted": name in UNSORTED}
    text = run_command(csv_path, "--labels", labels, *OPTIONS)
    assert "1 of 1 windows found" in text
    notes = [line for line in text.splitlines() if line.startswith("note: ")]
    if name in DUPLICATES:
        assert notes == [
            "note: 3 row(s) repeated an earlier timestamp and were left out (the first row of each timestamp is kept)"
        ]
        assert data["notes"] == [notes[0].removeprefix("note: ")]
    elif name in UNSORTED:
        assert notes == ["note: the rows were not in time order: sorted by timestamp"]
    elif name == "constant stretches":  # cleaning would have cut the training part below 2m: one stretch stays
        assert notes == [
            "note: cleaning left 1 discord(s) above its accepted distance in the training part, to keep the 2m=48 "
            "points a baseline needs (a longer --train lets it remove them)"
        ]
    else:
        assert notes == []


def test_of_rows_with_one_timestamp_the_first_in_the_file_is_kept():
    rows = [(at(2), 3.0), (at(1), 2.0), (at(2), 30.0), (at(0), 1.0), (at(1), 20.0), (at(2), 300.0)]
    series = series_from_rows(rows)
    assert series.timestamps == [at(0), at(1), at(2)]
    assert series.values.tolist() == [1.0, 2.0, 3.0]
    assert (series.duplicates, series.unsorted) == (3, True)
    timestamps, values = series  # it unpacks as the pair series_read_csv used to return
    assert timestamps is series.timestamps
    assert values is series.values
    in_order = series_from_rows([(at(0), 1.0), (at(0), 5.0), (at(1), 2.0)])  # a repeat is not disorder
    assert (in_order.duplicates, in_order.unsorted) == (1, False)


@pytest.mark.parametrize(
    ("content", "window", "message"),
    [
        ("", M, "series.csv is empty."),
        ("timestamp,value\n", M, "series.csv holds no rows."),
        (
            "timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:10:00Z,abc\n",
            M,
            "line 3: value 'abc' is not a number",
        ),
        ("timestamp,value\n2026-01-01T00:00:00Z,\n", M, "line 2: value '' is not a number"),
        ("timestamp,value\n2026-01-01T00:00:00Z,nan\n", M, "line 2: value 'nan' is not a finite number"),
        ("timestamp,value\n2026-01-01T00:00:00Z,-inf\n", M, "line 2: value '-inf' is not a finite number"),
        (
            "timestamp,value\n" + "".join(f"{at(i).isoformat()},{i % 3}\n" for i in range(M - 1)),
            M,
            "The series has 23 points, fewer than one window (m=24).",
        ),
    ],
)
def test_only_unusable_files_are_refused_in_one_line(tmp_path, content, window, message):
    csv_path, labels = write(tmp_path, [])
    csv_path.write_text(content)
    with pytest.raises(CommandError) as caught:
        run_command(csv_path, "--labels", labels, "--window", window)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ApplicationError) as caught:  # the same line from the services
        evaluate(csv_path, window=window)
    assert message in caught.value.detail


def evaluate(path, *, window):
    series = series_read_csv(path)
    return detection_evaluate(timestamps=series.timestamps, values=series.values, windows=[], window=window)


@pytest.mark.filterwarnings("ignore:A large number of values in `P`")  # stumpy's note on the constant series
def test_an_entirely_constant_training_part_is_evaluated(tmp_path):
    values = values_normal()
    values[:TRAIN] = 20.0
    csv_path, labels = write(tmp_path, rows_of(values))
    data = json.loads(run_command(csv_path, "--labels", labels, *OPTIONS, "--json"))
    # The baseline says the sensor does not change: every changing reading is critical, the spike's window too.
    assert data["windows"][0]["found"] is True
    assert data["counts"]["critical_readings"] == data["counts"]["flagged_readings"] > 0


# --- statuses do not depend on the readings' unit -------------------------------------------------------------------


def planted(name: str, seed: int) -> np.ndarray:
    """Ten days like a seed profile (m = 144), with a leak-like ramp, a drop and a stuck stretch after day 5."""
    values = np.asarray(generate_seeds.series(name, days=10, rng=np.random.default_rng(seed)), dtype=np.float64)
    spread = values.std()
    values[900:960] += np.linspace(0, 6 * spread, 60)
    values[1150:1160] -= 6 * spread
    values[1250:1330] = values[1250]
    return values


def statuses(run, *, warning: float = 120.0, critical: float = 200.0) -> list[str]:
    levels = [None if np.isnan(level) else float(level) for level in run.levels]
    return [engine.status_of(level, warning=warning, critical=critical) for level in levels]


@pytest.mark.parametrize(("name", "seed"), [("low", 1), ("mid", 2), ("high", 3)])
def test_scaling_by_1000_and_adding_a_million_changes_no_status(name, seed):
    """stumpy computes non-normalized distances from differences of values (aamp's diagonals, aampi's running sums
    of (T[i] − t)²), never as ‖a‖² + ‖b‖² − 2a·b, so the offset costs no precision: levels agree to about 1e-13."""
    values = planted(name, seed)
    train = 5 * DAY
    plain = detector_run(values, train=train, window=DAY)
    scaled = detector_run(values * 1_000.0 + 1e6, train=train, window=DAY)
    assert scaled.baseline_points == plain.baseline_points  # cleaning removed the same stretches
    assert scaled.max_distance == pytest.approx(1_000.0 * plain.max_distance, rel=1e-9)
    np.testing.assert_allclose(scaled.levels, plain.levels, rtol=1e-9, equal_nan=True)
    assert statuses(scaled) == statuses(plain)
    assert {"warning", "critical"} & set(statuses(plain))  # the planted anomalies are flagged
    timestamps = [at(i) for i in range(len(values))]
    windows = [(at(900), at(960)), (at(1150), at(1160))]
    score = {"timestamps": timestamps, "windows": windows, "warning": 120.0, "critical": 200.0}
    found, expected = (evaluation_score(run=run, **score).as_dict() for run in (scaled, plain))
    for part in (*found["windows"], *found["false_alarms"]):
        part["peak_level"] = pytest.approx(part["peak_level"], rel=1e-9)
    assert (found["windows"], found["false_alarms"]) == (expected["windows"], expected["false_alarms"])


# --- the database paths: gaps, constant stretches, any scale --------------------------------------------------------


def store(sensor, values, *, first=0, skip=()):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + (first + i) * STEP, value=float(v))
        for i, v in enumerate(values)
        if i not in skip
    )


def seeds_at(scale: float, offset: float) -> None:
    for seed in generate_seeds.seeds()["baselines"]:
        values = np.asarray(seed["values"], dtype=np.float64) * scale + offset
        baseline_create(name=seed["name"], kind=Baseline.Kind.SEED, values=values, window=seed["window"])


SCALES = [(1.0, 0.0), (1_000.0, 1e6), (1e-4, -3.0)]


@pytest.mark.django_db
@pytest.mark.parametrize(("scale", "offset"), SCALES)
def test_build_with_gaps_at_any_scale_leaves_the_same_baseline(scale, offset):
    sensor = SensorFactory(key="scaled")
    values = planted("mid", 4)[: 6 * DAY]
    values[300:310] += 60.0
    store(sensor, values * scale + offset, skip=range(500, 540))  # a gap of 40 readings: the points are joined
    baseline = baseline_build(sensor=sensor, points=6 * DAY)
    plain = engine.clean(np.delete(values, range(500, 540)), DAY)
    assert (baseline.points, baseline.joins) == (len(plain.values), plain.joins)
    stats = engine.baseline_stats(plain.values, DAY, plain.joins)
    assert baseline.max_distance == pytest.approx(stats["max_distance"] * scale, rel=1e-9)
    assert baseline.mean == pytest.approx(stats["mean"] * scale + offset, rel=1e-12)


@pytest.mark.django_db
@pytest.mark.parametrize(("scale", "offset"), SCALES)
def test_selection_chooses_the_same_seed_when_seeds_and_readings_share_a_unit(scale, offset):
    seeds_at(scale, offset)
    sensor = SensorFactory(key="like-mid")
    values = generate_seeds.series("mid", days=5, rng=np.random.default_rng(7))
    store(sensor, np.asarray(values) * scale + offset, skip=range(200, 230))
    detector_settings_ensure([sensor.pk])
    (outcome,) = baselines_select().outcomes
    assert (outcome["outcome"], outcome["baseline"], set(outcome["refused"])) == ("changed", "seed-mid", {"seed-low"})
    cleaned = engine.clean(np.delete(np.asarray(values), range(200, 230)), DAY).values
    assert outcome["mean"] == pytest.approx(cleaned.mean() * scale + offset, rel=1e-5)  # 6 significant digits


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:A large number of values in `P`")
def test_augmentation_and_feedback_take_constant_readings_at_any_scale(settings):
    settings.DETECTION_DEFAULT_SEED = "seed-mid"
    seeds_at(1_000.0, 1e6)
    sensor = SensorFactory(key="shut")
    detector_settings_update(sensor=sensor, window=DAY)
    store(sensor, np.full(3 * DAY, 1e6), skip=range(100, 150))  # a valve shut, the logger off for a while
    (outcome,) = baselines_augment(sensor_ids=[sensor.pk]).outcomes
    assert (outcome["outcome"], outcome["cleaned"]) == ("augmented", 3 * DAY - 50)
    config = feedback_set(sensor=sensor, enabled=True)
    feedback = config.feedback_baseline
    assert feedback.parent == config.baseline
    assert feedback.points == config.baseline.points + 2 * DAY
    assert DetectorSettings.objects.get(pk=sensor.pk).feedback_enabled is True
