"""Migration 0004 (device keys): the keys of accounts 0004 move to sensors with every field, and still work."""

from datetime import UTC, datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sensors.models import DeviceKey, Sensor
from sensors.services.device_keys import device_key_authenticate, device_key_create, device_key_digest

BEFORE = [("accounts", "0004_devicekey"), ("sensors", "0003_schedule_fetch_sources")]
AFTER = [("accounts", "0005_move_devicekey_to_sensors"), ("sensors", "0004_devicekey")]
REVOKED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FIELDS = ("name", "prefix", "digest", "platform_id", "sensor_id", "created_by_id", "created_at", "revoked_at")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def rows(model) -> dict:
    return {key.pk: {field: getattr(key, field) for field in FIELDS} for key in model.objects.all()}


@pytest.mark.django_db(transaction=True)
def test_device_keys_move_to_sensors_without_losing_one():
    old = migrate(BEFORE)
    platform = old.get_model("sensors", "Platform").objects.create(name="North field", slug="north-field")
    sensor = old.get_model("sensors", "Sensor").objects.create(key="pump-3", name="Pump 3", platform=platform)
    User = old.get_model("accounts", "User")
    staff = User.objects.create(email="staff@example.com", is_staff=True)
    OldKey = old.get_model("accounts", "DeviceKey")
    raws = {"by_platform": "dk_platform-secret", "by_sensor": "dk_sensor-secret", "revoked": "dk_revoked-secret"}
    OldKey.objects.create(
        name="gateway", prefix="platform", digest=device_key_digest(raws["by_platform"]), platform=platform,
        created_by=staff,
    )  # fmt: skip
    OldKey.objects.create(name="pump", prefix="sensor-s", digest=device_key_digest(raws["by_sensor"]), sensor=sensor)
    OldKey.objects.create(
        name="old", prefix="revoked-", digest=device_key_digest(raws["revoked"]), sensor=sensor, revoked_at=REVOKED_AT
    )
    before = rows(OldKey)
    assert len(before) == 3
    # Going back moved the content type (made when the suite's database was set up) to accounts.
    assert ContentType.objects.filter(app_label="accounts", model="devicekey").exists()

    new = migrate(AFTER)
    assert rows(new.get_model("sensors", "DeviceKey")) == before
    assert rows(DeviceKey) == before
    assert device_key_authenticate(raw=raws["by_platform"]).platform_id == platform.pk
    assert device_key_authenticate(raw=raws["by_sensor"]).sensor_id == sensor.pk
    assert device_key_authenticate(raw=raws["revoked"]) is None
    assert ContentType.objects.filter(app_label="sensors", model="devicekey").exists()
    assert not ContentType.objects.filter(app_label="accounts", model="devicekey").exists()
    key, raw = device_key_create(name="new", sensor=Sensor.objects.get(pk=sensor.pk))
    assert key.pk > max(before)  # the id sequence went along with the table
    assert device_key_authenticate(raw=raw) == key

    DeviceKey.objects.filter(pk=key.pk).delete()
    after = rows(DeviceKey)  # last_used_at was set by authenticating: not among the fields compared
    old = migrate(BEFORE)
    assert rows(old.get_model("accounts", "DeviceKey")) == after
    assert ContentType.objects.filter(app_label="accounts", model="devicekey").exists()

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # the rest of the suite runs on the latest schema
    assert rows(DeviceKey) == after
