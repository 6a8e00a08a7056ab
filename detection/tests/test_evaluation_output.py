"""evaluate_detection --output rows.csv and --plot out.png: what the detector saw, for other tools and for people."""

import csv
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
N = 1500


@pytest.fixture
def labeled(tmp_path):
    rng = np.random.default_rng(11)
    t = np.arange(N)
    values = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, N)
    values[1200] += 40
    csv_path, labels = tmp_path / "series.csv", tmp_path / "series.labels.json"
    csv_path.write_text(
        "timestamp,value\n" + "".join(f"{(START + i * STEP).isoformat()},{float(v)!r}\n" for i, v in enumerate(values))
    )
    labels.write_text(json.dumps([[(START + 1180 * STEP).isoformat(), (START + 1220 * STEP).isoformat()]]))
    return csv_path, labels, values


@pytest.mark.parametrize("method", ["discord", "baseline"])
def test_output_has_one_row_per_point_with_level_and_status(tmp_path, labeled, method):
    csv_path, labels, values = labeled
    rows_path = tmp_path / "rows.csv"
    out = StringIO()
    call_command(
        "evaluate_detection", str(csv_path), "--labels", str(labels), "--method", method, "--window", "24",
        "--output", str(rows_path), "--json", stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    with rows_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N
    assert list(rows[0]) == ["timestamp", "value", "level", "status"]
    assert [float(row["value"]) for row in rows] == pytest.approx(list(values))
    train = result["settings"]["train"]
    assert {row["status"] for row in rows[:train]} == {"undefined"}
    assert all(row["level"] == "" for row in rows[:train])
    flagged = [i for i, row in enumerate(rows) if row["status"] in ("warning", "critical")]
    assert flagged == [i for i, row in enumerate(rows) if row["level"] and float(row["level"]) >= 120]
    assert 1200 in flagged  # the spike
    assert result["counts"]["flagged_readings"] == len(flagged)
    # The NAB score of the same flags is in the JSON: the window found, every other flagged row charged.
    nab = result["nab"]["profiles"]["standard"]
    assert nab["detected"] == 1
    assert nab["false_positives"] == sum(1 for i in flagged if not 1180 <= i <= 1220)


def test_plot_writes_a_png(tmp_path, labeled):
    csv_path, labels, _ = labeled
    picture = tmp_path / "out.png"
    call_command(
        "evaluate_detection", str(csv_path), "--labels", str(labels), "--plot", str(picture), stdout=StringIO()
    )
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000


def test_an_unwritable_output_is_one_line(tmp_path, labeled):
    csv_path, labels, _ = labeled
    with pytest.raises(CommandError, match=r"^Cannot write .*rows\.csv"):
        call_command(
            "evaluate_detection", str(csv_path), "--labels", str(labels),
            "--output", str(tmp_path / "missing" / "rows.csv"), stdout=StringIO(),
        )  # fmt: skip


def test_a_short_file_says_the_discord_detector_is_still_learning(tmp_path, labeled, settings):
    settings.DETECTION_DISCORD_LEARNING = 400
    csv_path, labels, _ = labeled
    out = StringIO()
    call_command("evaluate_detection", str(csv_path), "--labels", str(labels), "--method", "discord", stdout=out)
    assert "note: the discord detector learns from a sensor's first 400 readings" in out.getvalue()
