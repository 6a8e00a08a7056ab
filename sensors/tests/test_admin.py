import pytest
from django.urls import reverse

from sensors.models import Reading, RejectedMessage
from sensors.services.ingest import readings_ingest
from sensors.tests.factories import InstallationFactory, ReadingFactory, SensorFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["platform", "installation", "sensor", "reading", "rejectedmessage"])
def test_changelists_and_search_load(admin_client, model):
    reading = ReadingFactory(sensor=SensorFactory(installation=InstallationFactory()))
    url = reverse(f"admin:sensors_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": reading.sensor.key}).status_code == 200


def test_readings_are_read_only(admin_client):
    reading = ReadingFactory()
    assert admin_client.get(reverse("admin:sensors_reading_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:sensors_reading_change", args=[reading.pk]), {"value": 99, "timestamp": reading.timestamp}
    )
    assert response.status_code == 403
    assert Reading.objects.get().value == reading.value


def test_readings_of_one_sensor_from_the_sensor_list(admin_client):
    sensor = SensorFactory()
    ReadingFactory.create_batch(3, sensor=sensor)
    ReadingFactory()
    response = admin_client.get(reverse("admin:sensors_reading_changelist"), {"sensor__id__exact": sensor.pk})
    assert response.context["cl"].result_count == 3


def test_reprocess_action(admin_client, settings):
    settings.SENSORS_AUTO_REGISTER = False
    readings_ingest(
        messages=[b'{"sensor": "later", "value": 1, "timestamp": "2024-12-01 12:00:00"}', b"{"], source="pubsub"
    )
    SensorFactory(key="later")
    admin_client.post(
        reverse("admin:sensors_rejectedmessage_changelist"),
        {"action": "reprocess", "_selected_action": list(RejectedMessage.objects.values_list("pk", flat=True))},
    )
    assert Reading.objects.get().sensor.key == "later"
    assert RejectedMessage.objects.get().payload == "{"


def test_sensor_admin_checks_installation_platform(admin_client):
    installation = InstallationFactory()
    other = SensorFactory().platform
    response = admin_client.post(
        reverse("admin:sensors_sensor_add"),
        {"key": "x1", "kind": "gas", "active": "on", "platform": other.pk, "installation": installation.pk},
    )
    assert response.status_code == 200
    assert "another platform" in response.content.decode()
