"""evaluate_detection: scores known by construction on small series (m = 24, a 24-point cycle, a little noise)."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from common.exceptions import ApplicationError
from detection.models import Baseline, Detection, DetectorSettings
from detection.services.baselines import baseline_create
from detection.services.detect import readings_detect
from detection.services.evaluation import (
    detection_evaluate,
    detector_run,
    evaluation_score,
    series_read_csv,
    windows_merge,
)
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

# These tests measure the evaluation machinery with the baseline method, whose levels are known by construction
# here; the discord method's evaluation has its own tests (test_evaluation_methods.py).
pytestmark = pytest.mark.usefixtures("baseline_method")

M = 24
N = 720
TRAIN = 144
START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
# Far above any level of the normal part of these series (their largest is about 1.3× the baseline's max distance),
# far below the level of a planted spike of 40.
WARNING, CRITICAL = 150.0, 300.0


def at(index: int) -> datetime:
    return START + index * STEP


def series(*, spikes=()):
    rng = np.random.default_rng(7)
    t = np.arange(N)
    values = 20 + 5 * np.sin(2 * np.pi * t / M) + rng.normal(0, 0.3, N)
    for index in spikes:
        values[index] += 40.0
    return [at(i) for i in range(N)], values


def score(timestamps, run, windows, **options):
    options = {"warning": WARNING, "critical": CRITICAL, **options}
    return evaluation_score(timestamps=timestamps, run=run, windows=windows, **options)


@pytest.fixture(scope="module")
def spiked():
    """Spikes at 400 (labeled below), 500 and 500 + M + 5 (false alarms when left unlabeled)."""
    timestamps, values = series(spikes=(400, 500, 500 + M + 5))
    return timestamps, detector_run(values, train=TRAIN, window=M)


def test_normal_series_raises_no_flag_at_the_test_thresholds():
    timestamps, values = series()
    run = detector_run(values, train=TRAIN, window=M)
    assert np.isnan(run.levels[:M]).all()  # the first m streamed points are undefined
    assert np.nanmax(run.levels) < WARNING
    result = score(timestamps, run, [])
    assert result.flagged == 0
    # No windows and no alarms: nothing to measure, every figure is undefined rather than a made-up 0 or 1.
    assert (result.precision, result.recall, result.f1) == (None, None, None)


def test_planted_spike_inside_its_window_is_found_at_the_spike(spiked):
    timestamps, run = spiked
    result = score(timestamps, run, [(at(395), at(405)), (at(500), at(510)), (at(529), at(540))])
    assert [w.found for w in result.windows] == [True, True, True]
    assert result.windows[0].first_detection == at(400)
    assert result.windows[0].delay == 5 * STEP
    assert result.windows[0].peak_level >= CRITICAL
    assert result.false_alarms == []
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)


def test_window_with_nothing_in_it_is_missed(spiked):
    timestamps, run = spiked
    windows = [(at(395), at(405)), (at(250), at(260)), (at(500), at(510)), (at(529), at(540))]
    result = score(timestamps, run, windows)
    assert [w.found for w in result.windows] == [False, True, True, True]  # sorted by start
    assert result.windows[0].first_detection is None
    assert result.recall == 0.75
    assert result.precision == 1.0
    assert result.f1 == pytest.approx(6 / 7)


def test_unlabeled_spike_echo_is_one_false_alarm_run(spiked):
    timestamps, run = spiked
    # Only the spike at 400 is labeled; the two at 500 and 529 are false alarms, each flagging its m points.
    result = score(timestamps, run, [(at(395), at(405))])
    assert [(a.start, a.end, a.flagged) for a in result.false_alarms] == [
        (at(500), at(500 + M - 1), M),
        (at(529), at(529 + M - 1), M),
    ]
    assert result.precision == pytest.approx(1 / 3)
    assert result.recall == 1.0
    assert result.f1 == pytest.approx(2 / 4)


def test_ok_run_joins_false_alarms_separated_by_a_short_quiet_stretch(spiked):
    timestamps, run = spiked
    # 5 unflagged readings separate the two echoes (500..523 and 529..552).
    assert len(score(timestamps, run, [(at(395), at(405))], ok_run=5).false_alarms) == 2
    joined = score(timestamps, run, [(at(395), at(405))], ok_run=6).false_alarms
    assert [(a.start, a.end, a.flagged) for a in joined] == [(at(500), at(529 + M - 1), 2 * M)]


def test_flags_after_a_window_belong_to_it_for_the_tail_only(spiked):
    timestamps, run = spiked
    # The first window ends at the spike: its echo lasts m - 1 more readings. The others cover their echoes.
    windows = [(at(390), at(400)), (at(500), at(500 + M - 1)), (at(529), at(529 + M - 1))]
    result = score(timestamps, run, windows)
    assert result.windows[0].tail_flagged == M - 1
    assert result.false_alarms == []
    strict = score(timestamps, run, windows, tail=0)
    assert [(a.start, a.end) for a in strict.false_alarms] == [(at(401), at(400 + M - 1))]
    assert strict.precision == pytest.approx(3 / 4)
    shorter = score(timestamps, run, windows, tail=10)
    assert [(a.start, a.end) for a in shorter.false_alarms] == [(at(411), at(400 + M - 1))]


def test_zero_windows_with_alarms_has_precision_zero(spiked):
    timestamps, run = spiked
    result = score(timestamps, run, [])
    assert len(result.false_alarms) == 3
    assert result.precision == 0.0
    assert result.recall is None
    assert result.f1 == 0.0


def test_no_alarm_at_all_leaves_precision_undefined(spiked):
    timestamps, run = spiked
    result = score(timestamps, run, [(at(395), at(405))], warning=1e12, critical=1e12)
    assert result.flagged == 0
    assert result.precision is None
    assert result.recall == 0.0
    assert result.f1 == 0.0


def test_windows_in_training_or_undefined_part_are_not_scored(spiked):
    timestamps, run = spiked
    windows = [(at(10), at(20)), (at(TRAIN + 5), at(TRAIN + 10)), (at(TRAIN + M - 2), at(410))]
    result = score(timestamps, run, windows)
    assert [w.scored for w in result.windows] == [False, False, True]
    assert result.windows[0].note == "inside the training part"
    assert "undefined" in result.windows[1].note
    assert result.windows[2].found
    assert result.recall == 1.0
    assert result.as_dict()["counts"]["windows_scored"] == 1


def test_unsorted_and_overlapping_windows_are_merged():
    windows = [(at(50), at(60)), (at(10), at(30)), (at(25), at(40)), (at(40), at(45))]
    assert windows_merge(windows) == [(at(10), at(45)), (at(50), at(60))]


def test_detection_evaluate_uses_the_settings_and_the_training_default(settings):
    settings.DETECTION_WINDOW = M
    settings.DETECTION_WARNING_LEVEL, settings.DETECTION_CRITICAL_LEVEL = WARNING, CRITICAL
    timestamps, values = series(spikes=(400,))
    result = detection_evaluate(timestamps=timestamps, values=values, windows=[(at(395), at(405))])
    assert (result.train, result.window, result.warning) == (108, M, WARNING)  # ceil(15 % of 720)
    assert result.f1 == 1.0
    with pytest.raises(ApplicationError, match="needs more than m=24"):
        detection_evaluate(timestamps=timestamps, values=values, windows=[], train=N - M)
    with pytest.raises(ApplicationError, match="cannot make a baseline"):
        detection_evaluate(timestamps=timestamps, values=values, windows=[], train=30)


def test_a_training_part_cleaning_would_empty_keeps_2m_points_and_says_so():
    timestamps, values = series(spikes=(30, 400))
    # The spike at 30 makes two discords of the 5m training points; the cut around the first leaves 2m (the spike
    # is gone), the second's would leave fewer: it stays.
    run = detector_run(values, train=5 * M, window=M)
    assert (run.baseline_points, run.left_in) == (2 * M, 1)
    result = detection_evaluate(
        timestamps=timestamps, values=values, windows=[], train=5 * M, window=M, warning=WARNING, critical=CRITICAL
    )
    assert result.notes == [
        "cleaning left 1 discord(s) above its accepted distance in the training part, to keep the 2m=48 points a "
        "baseline needs (a longer --train lets it remove them)"
    ]


@pytest.mark.django_db
def test_levels_equal_the_production_pipeline():
    """The evaluated levels are those the batch service stores for a sensor with the same baseline."""
    timestamps, values = series(spikes=(400,))
    run = detector_run(values, train=TRAIN, window=M)
    from detection import engine

    cleaned = engine.clean(values[:TRAIN], M).values
    baseline = baseline_create(name="eval-seed", kind=Baseline.Kind.SEED, values=cleaned, window=M)
    sensor = SensorFactory()
    DetectorSettings.objects.create(
        sensor=sensor,
        window=M,
        warning_level=WARNING,
        critical_level=CRITICAL,
        ok_run=6,
        cooldown_seconds=3600,
        silence_seconds=3600,
        baseline=baseline,
    )
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=ts, value=float(v))
        for ts, v in zip(timestamps[TRAIN:], values[TRAIN:], strict=True)
    )
    readings_detect(sensors={sensor.pk: timestamps[TRAIN]})
    stored = [level for level in Detection.objects.filter(sensor=sensor).order_by("timestamp").values_list("level")]
    stored = np.array([np.nan if level is None else level for (level,) in stored])
    np.testing.assert_allclose(stored, run.levels, equal_nan=True)


# --- the command ------------------------------------------------------------------------------------------------


def write_files(tmp_path, *, spikes=(400,), windows=((395, 405),), naive=False):
    """The series as CSV and its labels as JSON; with `naive`, both without a UTC offset."""
    timestamps, values = series(spikes=spikes)
    csv_path = tmp_path / "series.csv"
    lines = ["timestamp,value"]
    for ts, value in zip(timestamps, values, strict=True):
        stamp = ts.replace(tzinfo=None).isoformat() if naive else ts.isoformat()
        lines.append(f"{stamp},{float(value)!r}")
    csv_path.write_text("\n".join(lines) + "\n")
    labels = tmp_path / "labels.json"
    text = (lambda ts: ts.replace(tzinfo=None).isoformat()) if naive else (lambda ts: ts.isoformat())
    labels.write_text(json.dumps([[text(at(a)), text(at(b))] for a, b in windows]))
    return csv_path, labels


def run_command(*args):
    from io import StringIO

    out = StringIO()
    call_command("evaluate_detection", *map(str, args), stdout=out)
    return out.getvalue()


def test_command_json_prints_exactly_one_object(tmp_path):
    csv_path, labels = write_files(tmp_path, spikes=(400, 600), windows=((395, 405), (250, 260)))
    out = run_command(
        csv_path, "--labels", labels, "--train", TRAIN, "--window", M, "--warning", WARNING, "--critical", CRITICAL,
        "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert {"precision", "recall", "f1", "windows"} <= set(data)
    assert (data["precision"], data["recall"], data["f1"]) == (0.5, 0.5, 0.5)
    assert data["windows"][0] == {
        "start": at(250).isoformat(),
        "end": at(260).isoformat(),
        "found": False,
        "first_detection": None,
        "delay_seconds": None,
        "scored": True,
        "peak_level": pytest.approx(data["windows"][0]["peak_level"]),
        "flagged": 0,
        "tail_flagged": 0,
        "note": "",
    }
    assert data["windows"][1]["found"] is True
    assert data["windows"][1]["first_detection"] == at(400).isoformat()
    assert data["rules"]["tail_points"] == M
    assert data["counts"]["false_alarm_runs"] == 1
    assert data["false_alarms"][0]["start"] == at(600).isoformat()


def test_command_text_reads_naive_timestamps_in_the_ingest_zone(tmp_path, settings):
    settings.SENSORS_NAIVE_TIMEZONE = "Europe/Oslo"
    csv_path, labels = write_files(tmp_path, naive=True)
    out = run_command(csv_path, "--labels", labels, "--train", TRAIN, "--window", M, "--warning", WARNING)
    assert "precision 1.000  recall 1.000  F1 1.000" in out
    # 17:50-19:30 and the spike at 18:40, Oslo time (UTC+1 in January), are printed in UTC.
    [line] = [line for line in out.splitlines() if line.startswith("2026-01-03 16:50 → 2026-01-03 18:30")]
    assert line.split()[5:8] == ["yes", "2026-01-03", "17:40"]
    assert line.split()[8] == "50m"


def test_command_says_what_undefined_precision_means(tmp_path):
    csv_path, labels = write_files(tmp_path, spikes=())
    out = run_command(csv_path, "--labels", labels, "--train", TRAIN, "--window", M, "--warning", WARNING)
    assert "precision undefined (no alarms)  recall 0.000  F1 0.000" in out


@pytest.mark.parametrize(
    ("content", "labels", "message"),
    [
        (None, "[]", "Cannot read"),
        ("time,value\n2026-01-01T00:00:00Z,1\n", "[]", "header must name the columns timestamp and value"),
        ("timestamp,value\nyesterday,1\n", "[]", "line 2: 'yesterday' is not an ISO 8601"),
        ("timestamp,value\n2026-01-01T00:00:00Z,abc\n", "[]", "line 2: value 'abc' is not a number"),
        ("timestamp,value\n", "[]", "holds no rows"),
        ("OK", "{}", "must be a JSON list"),
        ("OK", "[[1, 2]]", "must be an ISO 8601 string"),
        ("OK", '[["2026-01-02T00:00:00Z"]]', r"must be a \[start, end\] pair"),
        ("OK", '[["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"]]', "ends before it starts"),
        ("OK", "[[", "is not valid JSON"),
    ],
)
def test_command_refuses_bad_files_in_one_line(tmp_path, content, labels, message):
    csv_path, _ = write_files(tmp_path)
    if content is None:
        csv_path = tmp_path / "missing.csv"
    elif content != "OK":
        csv_path.write_text(content)
    labels_path = tmp_path / "bad.json"
    labels_path.write_text(labels)
    with pytest.raises(CommandError, match=message) as caught:
        run_command(csv_path, "--labels", labels_path, "--train", TRAIN, "--window", M)
    assert "\n" not in str(caught.value)


def test_command_refuses_bad_options(tmp_path):
    csv_path, labels = write_files(tmp_path)
    with pytest.raises(CommandError, match="--train must be between 1 and 719"):
        run_command(csv_path, "--labels", labels, "--train", N, "--window", M)
    with pytest.raises(CommandError, match="at most the critical level"):
        run_command(csv_path, "--labels", labels, "--window", M, "--warning", 300, "--critical", 200)


def test_series_read_csv_sorts_rows(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2026-01-01T00:20:00Z,3\n2026-01-01T00:00:00Z,1\n\n2026-01-01T00:10:00Z,2\n")
    series = series_read_csv(path)
    assert series.timestamps == [at(0), at(1), at(2)]
    assert series.values.tolist() == [1.0, 2.0, 3.0]
    assert (series.unsorted, series.duplicates) == (True, 0)
