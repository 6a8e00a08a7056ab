"""Migration 0005 (methods): sensors detected before it keep the baseline method, and their state, unchanged."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("detection", "0004_schedule_augment_baselines")]
AFTER = [("detection", "0005_detector_method")]


@pytest.mark.django_db(transaction=True)
def test_existing_settings_and_states_keep_the_baseline_method():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    platform = old.get_model("sensors", "Platform").objects.create(name="Site", slug="site")
    sensor = old.get_model("sensors", "Sensor").objects.create(key="tank", name="Tank", platform=platform)
    old.get_model("detection", "DetectorSettings").objects.create(
        sensor=sensor, window=144, warning_level=120, critical_level=200, ok_run=6, cooldown_seconds=3600,
        silence_seconds=3600,
    )  # fmt: skip
    old.get_model("detection", "DetectorState").objects.create(sensor=sensor, window=144, values=b"\x00" * 16)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    settings = new.get_model("detection", "DetectorSettings").objects.get(sensor_id=sensor.pk)
    state = new.get_model("detection", "DetectorState").objects.get(sensor_id=sensor.pk)
    assert settings.method == "baseline"
    assert state.method == "baseline"
    assert bytes(state.values) == b"\x00" * 16
    assert bytes(state.method_state) == b""

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the suite runs on the latest schema
