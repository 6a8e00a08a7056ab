"""What a new user found in the admin (issue 15, item 5): one Accounts section, API tokens by their README name,
times to the second, levels rounded, key columns of the sensor and anomaly lists, a currency filter of sane height,
a chart on a sensor's page. The 1280 px check drives Chromium against the ASGI app."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from detection.tests.factories import AnomalyFactory, DetectionFactory, SensorEventFactory
from rates.providers.base import PublishedRate
from rates.services import rates_store
from sensors.ingest import readings_ingest
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def sections(response) -> dict[str, list[str]]:
    return {app["name"]: [model["name"] for model in app["models"]] for app in response.context["app_list"]}


def test_the_index_has_one_accounts_section_with_api_tokens(admin_client):
    index = sections(admin_client.get(reverse("admin:index")))
    assert index["Accounts"] == ["API tokens", "Email addresses", "Groups", "Users"]
    others = [name for name in index if any(word in name.lower() for word in ("account", "auth", "knox"))]
    assert others == ["Accounts"]
    tokens = admin_client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    assert "Select API token to view" in tokens  # tokens are never changed, only made and revoked
    # An app's own page (auth) still lists its models under its own name.
    assert sections(admin_client.get(reverse("admin:app_list", args=["auth"]))) == {
        "Authentication and Authorization": ["Groups"]
    }


def test_staff_who_are_not_superusers_see_their_account_models_in_one_section(client):
    client.force_login(UserFactory(staff=True))
    index = sections(client.get(reverse("admin:index")))
    assert "Users" in index["Accounts"]
    assert "Authentication and Authorization" not in index
    assert "Knox" not in index


def test_reading_detection_and_anomaly_times_to_the_second_and_levels_rounded(admin_client):
    sensor = SensorFactory(key="pump-3", unit="bar")
    message = {"sensor": "pump-3", "value": 1.23456789, "timestamp": AT.isoformat()}
    readings_ingest(messages=[message], decoded=True, transport="admin")
    DetectionFactory(sensor=sensor, timestamp=AT, level=123.456789, distance=0.123456789)
    AnomalyFactory(sensor=sensor, started_at=AT, peak_level=231.98765)
    SensorEventFactory(sensor=sensor, at=AT, level=199.951)

    readings = admin_client.get(reverse("admin:sensors_reading_changelist")).content.decode()
    assert "2026-03-04 05:06:07" in readings
    detections = admin_client.get(reverse("admin:detection_detection_changelist")).content.decode()
    assert "2026-03-04 05:06:07" in detections
    assert ">123.5<" in detections
    assert ">0.123<" in detections
    assert "123.456789" not in detections
    anomalies = admin_client.get(reverse("admin:detection_anomaly_changelist")).content.decode()
    assert "2026-03-04 05:06:07" in anomalies
    assert ">232.0<" in anomalies
    assert "231.98765" not in anomalies
    events = admin_client.get(reverse("admin:detection_sensorevent_changelist")).content.decode()
    assert ">200.0<" in events
    detection = sensor.detections.get()
    page = admin_client.get(reverse("admin:detection_detection_change", args=[detection.pk])).content.decode()
    assert "123.5" in page
    assert "123.456789" not in page
    sensors = admin_client.get(reverse("admin:sensors_sensor_changelist")).content.decode()
    assert "1.23457 bar" in sensors
    assert "2026-03-04 05:06:07" in sensors


def column_names(response) -> list[str]:
    return re.findall(r'<th scope="col" class="(?:sortable )?column-([a-z_]+)', response.content.decode())


def test_sensor_and_anomaly_lists_keep_to_their_key_columns(admin_client):
    AnomalyFactory()
    sensor_columns = column_names(admin_client.get(reverse("admin:sensors_sensor_changelist")))
    assert sensor_columns == [
        "key", "name", "platform", "kind", "active", "latest", "latest_timestamp", "readings_link"
    ]  # fmt: skip
    anomaly_columns = column_names(admin_client.get(reverse("admin:detection_anomaly_changelist")))
    assert anomaly_columns == ["sensor", "started_at", "ended_at", "peak", "peak_status", "status", "flagged"]


def test_the_currency_filters_are_drop_down_lists_of_the_currencies_in_use(admin_client):
    day = datetime(2024, 6, 3, tzinfo=UTC).date()
    rates_store(provider="ecb", rates=[PublishedRate("EUR", code, Decimal(2), day) for code in ("USD", "JPY", "NOK")])
    page = admin_client.get(reverse("admin:rates_exchangerate_changelist")).content.decode()
    assert page.count('data-testid="dropdown-filter"') == 2  # base and quote
    base = page[page.index('aria-label="base"') : page.index("</select>", page.index('aria-label="base"'))]
    assert base.count("<option") == 1 + 4  # "All" and the four currencies in use, not the 170 known ones
    chosen = admin_client.get(reverse("admin:rates_exchangerate_changelist"), {"base__code__exact": "EUR"})
    assert chosen.context["cl"].result_count == 3


def test_a_sensors_page_charts_its_last_readings(admin_client):
    sensor = SensorFactory(key="tank-1")
    readings_ingest(
        messages=[
            {"sensor": "tank-1", "value": float(i % 7), "timestamp": (AT + timedelta(seconds=i)).isoformat()}
            for i in range(600)
        ],
        decoded=True,
        transport="admin",
    )
    page = admin_client.get(reverse("admin:sensors_sensor_change", args=[sensor.pk])).content.decode()
    polyline = re.search(r'<polyline[^>]* points="([^"]+)"', page).group(1)
    assert len(polyline.split()) == 500  # the last 500
    assert "500 readings from 2026-03-04 05:07:47 to 2026-03-04 05:16:06 UTC; values 0 to 6." in page
    empty = admin_client.get(reverse("admin:sensors_sensor_change", args=[SensorFactory().pk])).content.decode()
    assert "No readings yet." in empty


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_key_columns_are_visible_at_1280_px(browser_page):
    admin = UserFactory(staff=True, is_superuser=True)
    sensor = SensorFactory(key="a-rather-long-sensor-key-7", name="Pressure at the north manifold, upstream")
    AnomalyFactory(sensor=sensor)
    page = browser_page(admin, width=1280, height=900)
    for url, columns in [
        (reverse("admin:sensors_sensor_changelist"), ["key", "name", "platform", "latest", "latest_timestamp"]),
        (reverse("admin:detection_anomaly_changelist"), ["sensor", "started_at", "peak", "peak_status", "status"]),
    ]:
        page.goto(url)
        for column in columns:
            box = page.locator(f"th.column-{column}").bounding_box()
            assert box is not None, column
            assert box["x"] >= 0, (url, column, box)
            assert box["x"] + box["width"] <= 1280, (url, column, box)
        # The page needs no horizontal scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, url
    page.goto(reverse("admin:rates_exchangerate_changelist"))
    assert page.locator("#changelist-filter").bounding_box()["height"] < 1500
