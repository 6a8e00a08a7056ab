import re
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.urls import reverse
from rest_framework.test import APIClient

from common.exceptions import ApplicationError
from sensors.models import DeviceKey
from sensors.services.device_keys import (
    device_key_authenticate,
    device_key_create,
    device_key_digest,
    device_key_revoke,
)
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db


def test_key_is_stored_as_a_digest_and_authenticates_until_revoked():
    sensor = SensorFactory()
    key, raw = device_key_create(name="pump 3", sensor=sensor)

    assert raw.startswith("dk_")
    assert len(raw) > 40
    assert key.digest == device_key_digest(raw) != raw
    assert raw[3:11] == key.prefix
    assert device_key_authenticate(raw=raw) == key
    assert DeviceKey.objects.get().last_used_at is not None
    assert device_key_authenticate(raw=raw + "x") is None

    device_key_revoke(key=key)
    assert device_key_authenticate(raw=raw) is None


def test_key_is_bound_to_exactly_one_target():
    platform, sensor = PlatformFactory(), SensorFactory()
    with pytest.raises(ApplicationError):
        device_key_create(name="both", platform=platform, sensor=sensor)
    with pytest.raises(ApplicationError):
        device_key_create(name="none")
    with pytest.raises(IntegrityError):
        DeviceKey.objects.create(name="raw", digest="x" * 64, prefix="x")


def test_may_write_only_its_own_platform_or_sensor():
    platform = PlatformFactory()
    on_platform, elsewhere = SensorFactory(platform=platform), SensorFactory()
    by_platform, _ = device_key_create(name="rig", platform=platform)
    by_sensor, _ = device_key_create(name="one", sensor=on_platform)

    assert by_platform.may_write(sensor_id=on_platform.pk, platform_id=platform.pk)
    assert not by_platform.may_write(sensor_id=elsewhere.pk, platform_id=elsewhere.platform_id)
    assert not by_platform.may_write(sensor_id=elsewhere.pk, platform_id=None)
    assert by_sensor.may_write(sensor_id=on_platform.pk, platform_id=platform.pk)
    assert not by_sensor.may_write(sensor_id=elsewhere.pk, platform_id=platform.pk)


def test_device_key_reads_nothing():
    key, raw = device_key_create(name="rig", platform=PlatformFactory())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {raw}")
    assert client.get("/api/v1/users/me/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION="Device dk_wrong")
    assert client.get("/api/v1/users/me/").status_code == 401


def test_command_prints_the_key_once():
    SensorFactory(key="pump-3")
    out, err = StringIO(), StringIO()
    call_command("create_device_key", "--sensor", "pump-3", stdout=out, stderr=err)

    raw = out.getvalue().strip()
    assert DeviceKey.objects.get().digest == device_key_digest(raw)
    assert "sensor pump-3" in err.getvalue()


def test_command_for_a_platform_and_errors():
    PlatformFactory(slug="north-field")
    call_command(
        "create_device_key", "--platform", "north-field", "--name", "gateway", stdout=StringIO(), stderr=StringIO()
    )
    assert DeviceKey.objects.get().name == "gateway"
    with pytest.raises(CommandError, match="No sensor 'nope'"):
        call_command("create_device_key", "--sensor", "nope")
    with pytest.raises(CommandError):
        call_command("create_device_key")


def test_admin_creates_a_key_shows_it_once_and_revokes(admin_client):
    sensor = SensorFactory()
    response = admin_client.post(
        reverse("admin:sensors_devicekey_add"), {"name": "field unit", "sensor": sensor.pk}, follow=True
    )
    shown = " ".join(str(m) for m in get_messages(response.wsgi_request))
    raw = re.search(r"copy it now, it is not shown again\): (\S+)", shown).group(1)
    key = DeviceKey.objects.get()
    assert key.digest == device_key_digest(raw)
    assert raw not in admin_client.get(reverse("admin:sensors_devicekey_change", args=[key.pk])).content.decode()
    assert admin_client.get(reverse("admin:sensors_devicekey_changelist")).status_code == 200

    admin_client.post(reverse("admin:sensors_devicekey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    assert device_key_authenticate(raw=raw) is None


def test_admin_refuses_a_key_with_two_targets(admin_client):
    response = admin_client.post(
        reverse("admin:sensors_devicekey_add"),
        {"name": "x", "sensor": SensorFactory().pk, "platform": PlatformFactory().pk},
    )
    assert response.status_code == 200
    assert not DeviceKey.objects.exists()


def test_the_api_schema_describes_device_keys(api_client):
    schema = api_client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["deviceKey"]["type"] == "apiKey"


# --- throttling: each key has its own rate, not the anonymous per-address one ------------------------------------


def device_post(raw: str, sensor_key: str, i: int):
    client = APIClient(REMOTE_ADDR="192.0.2.1")  # every device behind one NAT address
    client.credentials(HTTP_AUTHORIZATION=f"Device {raw}")
    reading = {"sensor": sensor_key, "timestamp": f"2024-12-01T00:00:{i:02d}Z", "value": 1.0}
    return client.post(reverse("sensors-api:reading-batch"), [reading], format="json")


def test_devices_behind_one_address_are_not_throttled_as_anonymous(monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/minute", "user": "1000/minute", "device": "1000/minute"}
    )
    sensor = SensorFactory()
    _, raw = device_key_create(name="rig", sensor=sensor)
    codes = [device_post(raw, sensor.key, i).status_code for i in range(5)]
    assert set(codes) == {201}, codes


def test_each_device_key_has_its_own_rate(monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "1000/minute", "user": "1000/minute", "device": "3/minute"}
    )
    first, second = SensorFactory(), SensorFactory()
    _, raw_first = device_key_create(name="first", sensor=first)
    _, raw_second = device_key_create(name="second", sensor=second)
    codes = [device_post(raw_first, first.key, i).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    body = device_post(raw_first, first.key, 9).json()
    assert body["error"] == "throttled"
    # Another key behind the same address keeps its own allowance.
    assert device_post(raw_second, second.key, 0).status_code == 201


def test_the_device_rate_is_a_setting():
    from django.conf import settings

    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["device"] == "1200/minute"
