"""The sensor page: who sees it, what its chart holds for each range, and the operators' detector forms."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from dashboard.selectors import RANGES, ChartWindow, chart_window, sensor_chart
from detection.models import DetectorSettings, Method, Status
from detection.tests.factories import AnomalyFactory, DetectionFactory, SensorEventFactory
from sensors.ingest.rollups import rollups_complete
from sensors.models import Reading, Sensor
from sensors.tests.factories import SensorFactory
from sensors.tests.test_api import consume

pytestmark = pytest.mark.django_db


def page_url(key: str, **query) -> str:
    url = reverse("dashboard:sensor", kwargs={"key": key})
    if query:
        url += "?" + "&".join(f"{name}={value}" for name, value in query.items())
    return url


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def store(sensor: Sensor, start: datetime, step: timedelta, values: list[float]) -> None:
    """Readings as ingestion stores them: the sensor's latest reading kept on the row, the hourly roll-ups the
    long ranges read written."""
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=start + i * step, value=value) for i, value in enumerate(values)
    )
    rollups_complete(sensor_ids=[sensor.id])
    sensor.latest_timestamp = start + (len(values) - 1) * step
    sensor.latest_value = values[-1]
    sensor.save(update_fields=["latest_timestamp", "latest_value"])


def chart_of(response) -> dict:
    text = response.content.decode()
    marker = '<script id="sensor-chart-data" type="application/json">'
    start = text.index(marker) + len(marker)
    return json.loads(text[start : text.index("</script>", start)])


@pytest.fixture
def sensor():
    return SensorFactory(key="tank-3.level:north", name="Tank 3 level", unit="m")


# --- who may see and do what -----------------------------------------------------------------------------------


def test_anonymous_callers_are_sent_to_log_in(sensor):
    response = Client().get(page_url(sensor.key))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_user_without_a_role_is_refused(sensor):
    assert logged_in(UserFactory()).get(page_url(sensor.key)).status_code == 403


def test_an_unknown_sensor_is_404(viewer):
    assert logged_in(viewer).get(page_url("no-such-sensor")).status_code == 404


def test_a_viewer_sees_chart_details_settings_and_events_but_no_form(sensor, viewer):
    SensorEventFactory(sensor=sensor, message="tank-3.level:north: critical at level 231 %")
    response = logged_in(viewer).get(page_url(sensor.key))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="sensor-chart"' in html
    assert "uPlot.iife.js" in html  # served by staticfiles from the uplot-python package, never a CDN
    assert "cdn" not in html.lower()
    assert "critical at level 231 %" in html
    assert 'data-testid="detector-settings"' in html
    assert 'data-testid="operator-forms"' not in html
    assert reverse("dashboard:sensor-settings", kwargs={"key": sensor.key}) not in html


def test_an_operator_gets_the_settings_and_feedback_forms(sensor, operator):
    html = logged_in(operator).get(page_url(sensor.key)).content.decode()
    assert 'data-testid="settings-form"' in html
    assert reverse("dashboard:sensor-settings", kwargs={"key": sensor.key}) in html
    assert "csrfmiddlewaretoken" in html


# --- the chart --------------------------------------------------------------------------------------------------


def test_a_short_range_shows_raw_readings_with_their_levels_and_the_anomaly_band(sensor, viewer):
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(minutes=30)
    store(sensor, start, timedelta(minutes=1), [float(i) for i in range(30)])
    store(SensorFactory(key="other"), start, timedelta(minutes=1), [99.0] * 30)  # never on this sensor's chart
    DetectionFactory(sensor=sensor, timestamp=start + timedelta(minutes=5), level=250.0, status=Status.CRITICAL)
    anomaly = AnomalyFactory(
        sensor=sensor, started_at=start + timedelta(minutes=5), ended_at=start + timedelta(minutes=8)
    )
    AnomalyFactory(sensor=sensor, started_at=now - timedelta(days=3), ended_at=now - timedelta(days=3))  # outside

    chart = chart_of(logged_in(viewer).get(page_url(sensor.key)))

    assert chart["range"] == "1h"
    assert chart["bucket"] is None
    assert chart["live"] is True
    assert chart["values"] == [float(i) for i in range(30)]
    assert chart["x"][0] == start.timestamp()
    assert chart["levels"][5] == 250.0
    assert chart["levels"].count(None) == 29
    assert [band["id"] for band in chart["anomalies"]] == [anomaly.pk]
    assert chart["until"] == (start + timedelta(minutes=29)).timestamp()
    assert chart["readings_ws"] == f"/ws/sensors/{sensor.key}/readings/?history=200"
    assert chart["detections_ws"] == f"/ws/sensors/{sensor.key}/detections/?history=200"


def test_a_range_with_more_readings_than_the_raw_limit_is_bucketed_with_the_highest_level_per_bucket(sensor):
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    start = now - timedelta(hours=2)  # 1-minute buckets of 10-second readings: 6 per bucket
    store(sensor, start, timedelta(seconds=10), [float(i % 6) for i in range(720)])
    DetectionFactory(sensor=sensor, timestamp=start + timedelta(seconds=10), level=40.0)
    DetectionFactory(sensor=sensor, timestamp=start + timedelta(seconds=20), level=180.0, status=Status.WARNING)
    window = ChartWindow(name="6h", start=now - timedelta(hours=6), end=now, live=True)

    chart = sensor_chart(sensor=sensor, window=window, raw_max=100)

    assert chart["bucket"] == "1m"
    assert chart["bucket_seconds"] == 60
    assert len(chart["x"]) == 120
    assert all(x % 60 == 0 for x in chart["x"])
    assert set(chart["values"]) == {2.5}  # the average of 0..5 in each minute
    assert chart["levels"][0] == 180.0
    assert chart["last_count"] == 6  # the live stream continues the last bucket's average from here


def test_sensor_chart_on_a_year_of_data_stays_within_the_point_budget(sensor):
    """Raw up to RAW_MAX_POINTS readings, else at most ~1,500 buckets (a reading every 10 minutes here)."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    store(sensor, now - timedelta(days=91), timedelta(minutes=10), [1.0] * (91 * 144))
    shown = {}
    for name in RANGES:
        chart = sensor_chart(sensor=sensor, window=chart_window(name=name, now=now))
        shown[name] = (chart["bucket"], len(chart["x"]))
    assert shown == {
        "1h": (None, 6),
        "6h": (None, 36),
        "24h": (None, 144),
        "7d": (None, 1008),
        "30d": ("1h", 720),
        "90d": ("2h", 1080),
    }


def test_at_centres_the_range_and_a_past_range_is_not_live(sensor, viewer):
    at = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    store(sensor, at - timedelta(hours=1), timedelta(minutes=10), [1.0] * 13)

    response = logged_in(viewer).get(page_url(sensor.key, range="6h", at="2025-06-01T12:00:00Z"))

    chart = chart_of(response)
    assert (chart["start"], chart["end"]) == (
        (at - timedelta(hours=3)).timestamp(),
        (at + timedelta(hours=3)).timestamp(),
    )
    assert chart["live"] is False
    assert len(chart["x"]) == 13
    html = response.content.decode()
    assert "not live: the range ends in the past" in html
    # The CSV link downloads exactly the shown range through the readings API.
    csv = urlsplit(response.context["csv_url"])
    assert csv.path == reverse("sensors-api:sensor-readings", kwargs={"key": sensor.key})
    query = parse_qs(csv.query)
    assert query["format"] == ["csv"]
    assert datetime.fromisoformat(query["start"][0]) == at - timedelta(hours=3)
    assert datetime.fromisoformat(query["end"][0]) == at + timedelta(hours=3)


def test_the_csv_link_answers_the_readings_of_the_range(sensor, viewer):
    at = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    store(sensor, at - timedelta(hours=5), timedelta(hours=1), [float(i) for i in range(10)])
    client = logged_in(viewer)
    csv_url = client.get(page_url(sensor.key, range="6h", at="2025-06-01T12:00:00Z")).context["csv_url"]
    response = client.get(csv_url)
    assert response.status_code == 200
    lines = "".join(consume(response)).strip().splitlines()
    assert lines[0] == "timestamp,value"
    assert [line.split(",")[1] for line in lines[1:]] == ["2.0", "3.0", "4.0", "5.0", "6.0", "7.0"]  # 09:00..14:00


@pytest.mark.parametrize(("query", "field"), [({"range": "2y"}, "range"), ({"at": "yesterday"}, "at")])
def test_a_bad_range_or_time_answers_400_naming_it(sensor, viewer, query, field):
    response = logged_in(viewer).get(page_url(sensor.key, **query))
    assert response.status_code == 400
    assert field in response.context["range_form"].errors
    assert 'data-testid="range-errors"' in response.content.decode()


def test_the_page_costs_the_same_queries_with_one_or_many_events_and_anomalies(viewer, operator):
    def queries(client, sensor) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page_url(sensor.key)).status_code == 200
        return len(captured)

    few, many = SensorFactory(key="few"), SensorFactory(key="many")
    for sensor, n in ((few, 1), (many, 15)):
        SensorEventFactory.create_batch(n, sensor=sensor)
        AnomalyFactory.create_batch(n, sensor=sensor, acknowledged_by=operator, resolved_by=operator)
    client = logged_in(viewer)
    queries(client, few)  # the session and user, loaded once
    assert queries(client, few) == queries(client, many)
    assert queries(client, many) <= 14


# --- operators change the detector ------------------------------------------------------------------------------


def settings_post(sensor, **changes) -> dict:
    config = DetectorSettings(sensor=sensor, **DetectorSettings.defaults())
    data = {name: getattr(config, name) for name in ("method", "window", "warning_level", "critical_level")}
    data.update(ok_run=config.ok_run, cooldown_seconds=config.cooldown_seconds, silence_seconds=config.silence_seconds)
    data.update(baseline="", **changes)
    return data


def test_an_operator_changes_the_levels(sensor, operator):
    url = reverse("dashboard:sensor-settings", kwargs={"key": sensor.key})
    client = logged_in(operator)
    response = client.post(url, settings_post(sensor, warning_level=110, critical_level=260))
    assert response.status_code == 302
    assert response["Location"] == page_url(sensor.key)
    config = DetectorSettings.objects.get(sensor=sensor)
    assert (config.warning_level, config.critical_level) == (110.0, 260.0)
    page = client.get(response["Location"]).content.decode()
    assert "Detector settings of tank-3.level:north saved (critical_level, warning_level)." in page


def test_the_services_refusal_is_shown_on_its_field_and_nothing_is_saved(sensor, operator):
    url = reverse("dashboard:sensor-settings", kwargs={"key": sensor.key})
    response = logged_in(operator).post(url, settings_post(sensor, warning_level=300, critical_level=200))
    assert response.status_code == 400
    assert response.context["settings_form"].errors["critical_level"] == [
        "Must be at least the warning level (300), not 200."
    ]
    assert not DetectorSettings.objects.filter(sensor=sensor, warning_level=300).exists()


def test_a_viewer_cannot_change_settings_or_feedback_even_by_a_forged_post(sensor, viewer):
    client = logged_in(viewer)
    settings_url = reverse("dashboard:sensor-settings", kwargs={"key": sensor.key})
    assert client.post(settings_url, settings_post(sensor, warning_level=1)).status_code == 403
    feedback_url = reverse("dashboard:sensor-feedback", kwargs={"key": sensor.key})
    assert client.post(feedback_url, {"enabled": "true"}).status_code == 403
    assert not DetectorSettings.objects.filter(sensor=sensor).exists()


def test_settings_and_feedback_refuse_get(sensor, operator):
    client = logged_in(operator)
    assert client.get(reverse("dashboard:sensor-settings", kwargs={"key": sensor.key})).status_code == 405
    assert client.get(reverse("dashboard:sensor-feedback", kwargs={"key": sensor.key})).status_code == 405


def test_feedback_mode_of_a_discord_sensor_is_refused_with_the_reason(sensor, operator, settings):
    settings.DETECTION_METHOD = Method.DISCORD
    url = reverse("dashboard:sensor-feedback", kwargs={"key": sensor.key})
    response = logged_in(operator).post(url, {"enabled": "true"})
    assert response.status_code == 409
    assert "Feedback mode belongs to the baseline method" in response.context["feedback_form"].non_field_errors()[0]
    assert not DetectorSettings.objects.filter(sensor=sensor, feedback_enabled=True).exists()


def test_an_operator_starts_and_stops_feedback_mode(sensor, operator, settings):
    from detection.services.settings import detector_settings_update
    from detection.tests.factories import seed_baseline

    settings.DETECTION_METHOD = Method.BASELINE
    settings.DETECTION_DEFAULT_SEED = "seed-small"
    seed_baseline(name="seed-small", points=160, window=16)
    detector_settings_update(sensor=sensor, window=16)
    store(sensor, datetime(2026, 1, 1, tzinfo=UTC), timedelta(minutes=10), [float(i % 7) for i in range(40)])
    client = logged_in(operator)
    url = reverse("dashboard:sensor-feedback", kwargs={"key": sensor.key})

    response = client.post(url, {"enabled": "true", "points": "20"})
    assert response.status_code == 302
    config = DetectorSettings.objects.get(sensor=sensor)
    assert config.feedback_enabled is True
    assert config.feedback_baseline.points == 160 + 20
    assert 'data-testid="feedback-state">on' in client.get(page_url(sensor.key)).content.decode()

    assert client.post(url, {"enabled": "false"}).status_code == 302
    assert DetectorSettings.objects.get(sensor=sensor).feedback_enabled is False
