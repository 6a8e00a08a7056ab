import pytest
from django.urls import reverse

from sensors.ingest import readings_ingest
from sensors.models import HttpSource, Platform, Reading, RejectedMessage, SourceFetch
from sensors.services.http_sources import source_fetch
from sensors.tests.conftest import fixture_bytes
from sensors.tests.factories import HttpSourceFactory, InstallationFactory, ReadingFactory, SensorFactory

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
        messages=[b'{"sensor": "later", "value": 1, "timestamp": "2024-12-01 12:00:00"}', b"{"], transport="pubsub"
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


# --- external sources -------------------------------------------------------------------------------------------


def test_source_and_fetch_lists_load_with_status_and_error(admin_client, http):
    source = HttpSourceFactory(sensor=SensorFactory(key="tank.level"), url="https://a.example.com/")
    http.get("https://a.example.com/", status=500, body=fixture_bytes("server_error_500.html"))
    source_fetch(source=source)
    response = admin_client.get(reverse("admin:sensors_httpsource_changelist"), {"q": "tank"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "failing" in page
    assert "HTTP 500 Internal Server Error" in page
    response = admin_client.get(reverse("admin:sensors_sourcefetch_changelist"), {"source__id__exact": source.pk})
    assert response.context["cl"].result_count == 1
    assert admin_client.get(reverse("admin:sensors_sourcefetch_add")).status_code == 403
    change = reverse("admin:sensors_sourcefetch_change", args=[SourceFetch.objects.get().pk])
    assert admin_client.post(change, {"error": ""}).status_code == 403


def source_form(sensor, **fields) -> dict:
    return {
        "sensor": sensor.pk,
        "enabled": "on",
        "format": "json",
        "url": "https://a.example.com/obs",
        "since_param": "since",
        "headers": '{"X-Api-Key": "k"}',
        "timeout": 10,
        "records_path": "",
        "timestamp_field": "timestamp",
        "value_field": "value",
        "csv_delimiter": ",",
        **fields,
    }


def test_adding_a_source_validates_the_mapping(admin_client):
    sensor = SensorFactory()
    url = reverse("admin:sensors_httpsource_add")
    response = admin_client.post(url, source_form(sensor, format="csv", records_path="data"))
    assert response.status_code == 200
    assert "A CSV answer has no records path" in response.content.decode()
    assert not HttpSource.objects.exists()

    response = admin_client.post(url, source_form(sensor, value_field=" obs.temp "))
    assert response.status_code == 302
    source = HttpSource.objects.get()
    assert (source.sensor, source.headers, source.value_field) == (sensor, {"X-Api-Key": "k"}, "obs.temp")


def test_fetch_now_action_fetches_disabled_sources_too(admin_client, http):
    good = HttpSourceFactory(sensor=SensorFactory(key="good"), url="https://a.example.com/", enabled=False)
    bad = HttpSourceFactory(sensor=SensorFactory(key="bad"), url="https://b.example.com/")
    http.get("https://a.example.com/", body=fixture_bytes("mixed_records.json"))
    http.get("https://b.example.com/", body=fixture_bytes("proxy_login_page.html"))
    response = admin_client.post(
        reverse("admin:sensors_httpsource_changelist"),
        {"action": "fetch_now", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    shown = [str(message) for message in response.context["messages"]]
    assert "good: 8 received, 0 skipped (not newer), 3 stored, 0 duplicates, 5 rejected" in shown
    assert any(text.startswith("bad: failed: The answer is not JSON") for text in shown)
    assert Reading.objects.filter(sensor=good.sensor).count() == 3


def test_sensor_page_links_to_its_source_or_to_adding_one(admin_client):
    source = HttpSourceFactory(sensor=SensorFactory(key="with-source"))
    plain = SensorFactory(key="plain")
    page = admin_client.get(reverse("admin:sensors_sensor_change", args=[source.sensor.pk])).content.decode()
    assert reverse("admin:sensors_httpsource_change", args=[source.pk]) in page
    assert "never fetched" in page
    page = admin_client.get(reverse("admin:sensors_sensor_change", args=[plain.pk])).content.decode()
    assert reverse("admin:sensors_httpsource_add") + f"?sensor={plain.pk}" in page


def test_a_platform_with_installations_saved_from_the_admin(admin_client):
    response = admin_client.post(
        reverse("admin:sensors_platform_add"),
        {
            "name": "North field",
            "slug": "north",
            "description": "",
            "installations-TOTAL_FORMS": "1",
            "installations-INITIAL_FORMS": "0",
            "installations-0-name": "Tank 1",
            "installations-0-height": "3.5",
            "installations-0-orientation": "",
            "installations-0-volume": "",
            "installations-0-porosity": "{}",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    platform = Platform.objects.get(slug="north")
    assert list(platform.installations.values_list("name", "height")) == [("Tank 1", 3.5)]
