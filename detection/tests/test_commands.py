"""The baseline commands: success prints a summary; bad input exits non-zero with one readable line."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from detection.data import generate_seeds
from detection.models import Baseline, DetectorSettings, JobRun
from detection.services.baselines import SEEDS_FILE
from detection.services.settings import detector_settings_ensure
from detection.tests.factories import DAY, normal_series
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def store(sensor, values):
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + i * STEP, value=float(v)) for i, v in enumerate(values)
    )


def test_load_baselines_loads_the_shipped_seeds_once():
    assert run("load_baselines") == (f"Seed baselines from {SEEDS_FILE}: 3 (created seed-low, seed-mid, seed-high).\n")
    assert run("load_baselines") == (
        f"Seed baselines from {SEEDS_FILE}: 3 (unchanged seed-low, seed-mid, seed-high).\n"
    )
    assert Baseline.objects.filter(kind="seed").count() == 3


def test_load_baselines_refuses_a_changed_seed_unless_replace(tmp_path):
    run("load_baselines")
    data = json.loads(SEEDS_FILE.read_text())
    data["baselines"][1]["values"].reverse()
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CommandError, match=r"^The seed 'seed-mid' is stored with other values or window; use"):
        run("load_baselines", str(path))
    assert "(replaced seed-mid; unchanged seed-low, seed-high)" in run("load_baselines", str(path), "--replace")


def test_a_bad_file_exits_non_zero_with_one_line(tmp_path):
    path = tmp_path / "seeds.json"
    path.write_text('{"format": "sensorhub-baselines/1", "baselines": [{"name": "x"}]}')
    result = subprocess.run(
        [sys.executable, "manage.py", "load_baselines", str(path)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"CommandError: {path}: baseline 1 (x): 'window' must be an integer"]


def test_build_baseline_sets_the_sensors_baseline():
    sensor = SensorFactory(key="tank")
    store(sensor, normal_series(5 * DAY))
    out = run("build_baseline", "--sensor", "tank", "--points", str(3 * DAY), "--window", "72")
    baseline = DetectorSettings.objects.get(pk=sensor.pk).baseline
    assert (baseline.kind, baseline.window) == ("built", 72)
    assert out.startswith(f"Built {baseline.name} for tank: {baseline.points} points (m=72), mean ")
    assert out.endswith(f"it is now the sensor's baseline.\n{baseline.description}\n")
    assert (
        baseline.description
        == f"The first {3 * DAY} readings of tank, {baseline.points} left after cleaning with m=72."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensor", "nope", "--points", "500"], "No sensor with key 'nope'."),
        (
            ["--sensor", "tank", "--points", "500"],
            "Sensor tank: 100 readings to use; building a baseline needs at least 2m=288.",
        ),
        (["--sensor", "tank", "--points", "0"], "points must be a positive number."),
        (["--sensor", "tank", "--points", "50", "--window", "2"], "The window m must be at least 4."),
    ],
)
def test_build_baseline_refuses_bad_input_in_one_line(args, message):
    store(SensorFactory(key="tank"), normal_series(100))
    with pytest.raises(CommandError) as info:
        run("build_baseline", *args)
    assert str(info.value) == message
    assert not Baseline.objects.exists()


def test_select_and_augment_baselines_run_for_the_named_sensors():
    run("load_baselines")
    for key in ("a", "b"):
        sensor = SensorFactory(key=key)
        store(sensor, generate_seeds.series("low", days=4, rng=np.random.default_rng(3)))
        detector_settings_ensure([sensor.pk])
    out = run("select_baselines", "--sensor", "a")
    run_id = JobRun.objects.get(job="select_baselines").pk
    assert out == f"Baseline selection (job run {run_id}): 1 sensor: 1 changed.\n  a: changed seed-low\n"
    assert DetectorSettings.objects.get(sensor__key="b").baseline is None
    out = run("augment_baselines")
    run_id = JobRun.objects.get(job="augment_baselines").pk
    assert out.startswith(
        f"Baseline augmentation (job run {run_id}): 2 sensors: 2 augmented.\n  a: augmented a-augmented-"
    )
    assert DetectorSettings.objects.get(sensor__key="a").baseline.parent.name == "seed-low"
    assert DetectorSettings.objects.get(sensor__key="b").baseline.parent.name == "seed-mid"  # the default seed


@pytest.mark.parametrize("command", ["select_baselines", "augment_baselines"])
def test_job_commands_refuse_unknown_sensors(command):
    SensorFactory(key="a")
    with pytest.raises(CommandError, match=r"^No sensor with key 'x', 'y'\.$"):
        run(command, "--sensor", "a", "--sensor", "y", "--sensor", "x")
    assert not JobRun.objects.exists()
