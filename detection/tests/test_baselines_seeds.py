"""The shipped seeds and loading them (`detection.services.baselines.seeds`)."""

import json

import pytest

from common.exceptions import ApplicationError
from detection.data import generate_seeds
from detection.models import Baseline, DetectorSettings
from detection.services.baselines import SEEDS_FILE, baselines_load
from detection.services.settings import detector_settings_ensure
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]


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
