"""bench/detection_quality.py on small folders built here: NAB-format results scored by hand, and the detector mode
with the real detector (m = 24 on a 24-point cycle with one planted spike)."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bench import detection_quality

START = datetime(2026, 1, 1, tzinfo=UTC)  # written without a zone (stamp), as NAB's files are


def stamp(index: int) -> str:
    return (START + timedelta(minutes=10 * index)).strftime("%Y-%m-%d %H:%M:%S")


def write_series(path, values, *, stamps=None, windows=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = stamps or [stamp(i) for i in range(len(values))]
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(stamps, values, strict=True)))
    if windows is not None:
        path.with_suffix(".labels.json").write_text(json.dumps(windows))


def run_json(capsys, *argv):
    assert detection_quality.main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# --- results mode ---------------------------------------------------------------------------------------------------


@pytest.fixture
def nab_folders(tmp_path):
    """data/cat/a.csv: 30 rows, window rows 10..19; data/cat/quiet.csv: 30 rows, no window; results of detector
    `det` flag rows 5 and 10 of a (scores 0.9) and row 20 of quiet; NAB's standard score file for both."""
    data, results = tmp_path / "data", tmp_path / "det"
    write_series(data / "cat" / "a.csv", [1.0] * 30, windows=[[stamp(10), stamp(19)]])
    write_series(data / "cat" / "quiet.csv", [1.0] * 30, windows=[])
    write_series(data / "cat" / "unlabeled.csv", [1.0] * 30)  # no labels: not scored
    for name, flagged in (("a", (5, 10)), ("quiet", (20,))):
        rows = [f"{stamp(i)},1.0,{0.9 if i in flagged else 0.1},0\n" for i in range(30)]
        (results / "cat").mkdir(parents=True, exist_ok=True)
        (results / "cat" / f"det_{name}.csv").write_text("timestamp,value,anomaly_score,label\n" + "".join(rows))
    # a: probation floor(0.15 × 30) = 4 rows; row 5 is a false positive with no window before it (-0.11), row 10
    # the window's first row (+1.0): 0.89. quiet: row 20, no window before it: -0.11. Row counts after probation:
    # a: TP 1 (row 10), FP 1 (row 5), FN 9 (rows 11..19), TN 26 - 11 = 15; quiet: FP 1, TN 25.
    (results / "det_standard_scores.csv").write_text(
        "Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count\n"
        "det,standard,cat/a.csv,0.5,0.89,1,15,1,9,26\n"
        "det,standard,cat/quiet.csv,0.5,-0.5,0,25,1,0,26\n"  # not our score: must show as differing
    )
    return data, results


def test_results_mode_scores_nab_results_and_compares_with_nabs_score_file(nab_folders, capsys):
    data, results = nab_folders
    output = run_json(capsys, data, "--results", results, "--threshold", 0.5)
    files = {entry["file"]: entry for entry in output["files"]}
    assert set(files) == {"cat/a.csv", "cat/quiet.csv"}
    a, quiet = files["cat/a.csv"]["nab"], files["cat/quiet.csv"]["nab"]
    assert a["standard"]["score"] == pytest.approx(0.89)
    assert a["standard"]["reference"]["match"] is True
    assert a["reward_low_FP_rate"]["score"] == pytest.approx(1.0 - 0.22)
    assert quiet["standard"]["score"] == pytest.approx(-0.11)
    assert quiet["standard"]["reference"]["match"] is False
    overall = output["overall"]
    # Σ score 0.89 - 0.11 = 0.78; null -1 (a's window), perfect 1: 100 × (0.78 + 1) / 2 = 89.
    assert overall["nab_normalized"]["standard"] == pytest.approx(89.0)
    assert overall["reference_matches"] == {"standard": "1/2"}
    # Window F1: a's training part int(4.5) = 4 rows; found, row 5 a false alarm run: P 1/2, R 1, F1 2/3.
    assert files["cat/a.csv"]["window_f1"]["f1"] == pytest.approx(2 / 3)
    assert overall["mean_f1"] == pytest.approx(2 / 3)
    assert (overall["found"], overall["scored_windows"]) == (1, 1)
    assert overall["false_alarm_runs_with_windows"] == 1
    assert (overall["false_alarm_runs_without_windows"], overall["files_without_windows_alarmed"]) == (1, 1)
    assert overall["median_delay"] == 0.0  # found at the window's first row


def test_results_mode_text_output_and_profile_thresholds(nab_folders, capsys):
    data, results = nab_folders
    argv = [
        str(data),
        "--results",
        str(results),
        "--threshold",
        "0.5",
        "--profile-threshold",
        "reward_low_FP_rate=0.95",
    ]
    assert detection_quality.main(argv) == 0
    out = capsys.readouterr().out
    # At 0.95 nothing is flagged for reward_low_FP_rate: only a's missed window, -1: normalized 0.
    assert "reward_low_FP_rate 0.00" in out
    assert "standard 89.00" in out
    assert "standard equal" in out
    assert "standard DIFFERS (-0.500000)" in out


def test_results_mode_reports_unusable_files_and_goes_on(nab_folders, capsys):
    data, results = nab_folders
    (results / "cat" / "det_quiet.csv").unlink()
    rows = (results / "cat" / "det_a.csv").read_text().splitlines()
    (results / "cat" / "det_a.csv").write_text("\n".join(rows[:-1]) + "\n")  # one row short
    output = run_json(capsys, data, "--results", results, "--threshold", 0.5)
    refused = {entry["file"]: entry["refused"] for entry in output["files"]}
    assert "not the data file's" in refused["cat/a.csv"]
    assert "no results file" in refused["cat/quiet.csv"]
    assert output["overall"]["refused_files"] == 2


# --- detector mode --------------------------------------------------------------------------------------------------

M = 24
ROWS = 1440  # NAB's probationary part, the detector's training part: floor(0.15 × 1440) = 216 rows


def spiked_values() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(ROWS)
    values = 20 + 5 * np.sin(2 * np.pi * t / M) + rng.normal(0, 0.3, ROWS)
    values[800] += 40.0
    return values


@pytest.fixture
def labeled(tmp_path, settings):
    # Far above the levels of this series' normal part (about 1.3 × the baseline's max distance at most).
    settings.DETECTION_WARNING_LEVEL = 150.0
    data = tmp_path / "data"
    write_series(data / "cat" / "spiky.csv", spiked_values(), windows=[[stamp(795), stamp(805)]])
    stamps = [stamp(i) for i in range(ROWS)]
    stamps[301] = stamps[300]  # a repeated timestamp: the first row is kept, the file is scored
    write_series(data / "cat" / "repeated.csv", spiked_values(), stamps=stamps, windows=[[stamp(795), stamp(805)]])
    broken = data / "cat" / "broken.csv"
    write_series(broken, spiked_values(), windows=[[stamp(795), stamp(805)]])
    lines = broken.read_text().splitlines()
    lines[500] = lines[500].split(",")[0] + ",n/a"  # not a number: the one thing the bench must refuse
    broken.write_text("\n".join(lines) + "\n")
    return data


def test_detector_flags_are_aligned_with_the_rows(labeled):
    from detection.services.evaluation import series_read_csv

    timestamps, values = series_read_csv(labeled / "cat" / "spiky.csv")
    flags = detection_quality._detector_flags(timestamps, values, "baseline", window=M)
    assert flags.shape == (ROWS,)
    assert not flags[: 216 + M].any()  # training part, then m rows without a level
    assert flags[800]  # the spike


def test_detector_mode_scores_sensorhubs_detector_and_reports_refused_files(labeled, capsys):
    output = run_json(capsys, labeled, "--window", M, "--method", "baseline")
    assert output["settings"]["method"] == "baseline"
    files = {entry["file"]: entry for entry in output["files"]}
    assert "is not a number" in files["cat/broken.csv"]["refused"]
    assert "refused" not in files["cat/repeated.csv"]
    spiky = files["cat/spiky.csv"]
    assert spiky["window_f1"]["first_detections"] == [800]
    assert spiky["window_f1"]["f1"] == 1.0
    assert spiky["nab"]["standard"]["first_detections"] == [800]
    assert spiky["median_delay"] == pytest.approx(5 / 11)  # (800 - 795) / 11 rows
    overall = output["overall"]
    assert (overall["scored_files"], overall["refused_files"]) == (2, 1)
    assert (overall["found"], overall["scored_windows"]) == (2, 2)
    # Over all files, the refused one counted as a detector that never flags: its window is missed.
    everything = output["overall_refused_as_never_flagging"]
    assert (everything["scored_files"], everything["found"], everything["scored_windows"]) == (3, 2, 3)
