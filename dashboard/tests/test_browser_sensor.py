"""The sensor and anomalies pages in headless Chromium against the ASGI app served by daphne in this process
(common/tests/browser.py): a reading published to Redis pub/sub reaches the chart live through the real consumer
process; an operator acknowledges an anomaly; a viewer gets no button and the server refuses a forged POST."""

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
import redis
from django.conf import settings
from playwright.sync_api import expect

from detection.broadcast import detections_broadcast
from detection.models import Anomaly, DetectorSettings
from detection.tests.factories import AnomalyFactory
from sensors.ingest.services import readings_ingest
from sensors.models import Reading, Transport
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ARTIFACTS_DIR = Path(settings.BASE_DIR) / "test-artifacts"
CHANNEL = "sensor_stream"  # the old contract's channel, as devices publish to it


def wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def pubsub_consumer(process_database_url, redis_url, tmp_path):
    """`manage.py consume_readings --source pubsub` in its own process on this test's database, subscribed to
    `sensor_stream`; stopped after the test. Yields a Redis client to publish with."""
    client = redis.Redis.from_url(redis_url)
    subscribers = client.pubsub_numsub(CHANNEL)[0][1]
    log = (tmp_path / "consumer.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "consume_readings", "--source", "pubsub", "--channel", CHANNEL,
         "--redis-url", redis_url, "--batch-ms", "20"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": process_database_url,
             "REDIS_URL": redis_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def subscribed() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the consumer exited: {(tmp_path / 'consumer.log').read_text()[-2000:]}")
            return client.pubsub_numsub(CHANNEL)[0][1] > subscribers

        wait_for(subscribed, timeout=60, what="the pub/sub consumer to subscribe")
        yield client
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        client.close()


def publish(client, key: str, value: float, moment: datetime) -> None:
    # The old contract's shape, as the seed's `redis-cli PUBLISH sensor_stream '{…}'` sends it.
    message = {"sensor": key, "value": value, "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S")}
    client.publish(CHANNEL, json.dumps(message))


@pytest.mark.usefixtures("live_groups_restored")
def test_a_reading_published_to_sensor_stream_appears_on_a_viewers_chart_within_a_second(
    browser_page, viewer, pubsub_consumer
):
    # A key of this test's own: other processes on this Redis may publish to sensor_stream too.
    key = f"browser-live-{os.getpid()}.temp"
    sensor = SensorFactory(key=key, unit="°C")
    now = datetime.now(UTC).replace(microsecond=0)
    # Our consumer is up and storing: a first reading reaches the test database.
    publish(pubsub_consumer, key, 20.0, now - timedelta(seconds=30))
    wait_for(lambda: Reading.objects.filter(sensor=sensor).exists(), timeout=10, what="the first reading")

    page = browser_page(viewer)
    page.goto(f"/dashboard/sensors/{key}/")
    chart = page.get_by_test_id("sensor-chart")
    expect(chart.locator("canvas")).to_have_count(1)  # uPlot drew it
    expect(chart).to_have_attribute("data-live-state", "open")
    expect(chart).to_have_attribute("data-points", "1")
    expect(chart).to_have_attribute("data-last-value", "20")

    published = time.monotonic()
    publish(pubsub_consumer, key, 42.125, now)
    expect(chart).to_have_attribute("data-last-value", "42.125", timeout=1000)
    elapsed = time.monotonic() - published
    expect(chart).to_have_attribute("data-points", "2")
    expect(page.get_by_test_id("sensor-latest")).to_contain_text("42.125")
    # uPlot's own data holds the point too (x in Unix seconds, then the readings).
    assert page.evaluate("() => document.querySelector('[data-sensor-chart]').dataset.lastTime") == now.isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    assert elapsed < 1.0, elapsed
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / "dashboard-sensor.png"), full_page=True)


@pytest.mark.usefixtures("live_groups_restored")
def test_a_bucketed_range_folds_live_readings_and_detections_into_its_last_bucket(browser_page, viewer):
    """24 h of 10-second readings is more than the raw limit: 1-minute averages, which live readings continue
    (stored here through the ingest service, on any database; the detection as the detect worker broadcasts it)."""
    key = f"browser-buckets-{os.getpid()}"
    sensor = SensorFactory(key=key)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    last = minute + timedelta(seconds=50)  # the last bucket holds 6 readings: :00 … :50
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=last - i * timedelta(seconds=10), value=10.0) for i in range(8640)
    )
    sensor.latest_timestamp, sensor.latest_value = last, 10.0
    sensor.save(update_fields=["latest_timestamp", "latest_value"])

    page = browser_page(viewer)
    page.goto(f"/dashboard/sensors/{key}/?range=24h")
    chart = page.get_by_test_id("sensor-chart")
    expect(chart).to_have_attribute("data-live-state", "open")
    expect(page.get_by_test_id("sensor-page")).to_contain_text("averages per 1m")
    points = int(chart.get_attribute("data-points"))
    assert 1430 <= points <= 1441
    last_bucket = "() => { const d = document.querySelector('[data-sensor-chart]').uplot.data; "
    last_bucket += "return [d[0].at(-1), d[1].at(-1), d[2].at(-1)]; }"
    assert page.evaluate(last_bucket) == [minute.timestamp(), 10.0, None]

    moment = minute + timedelta(seconds=55)
    result = readings_ingest(
        messages=[{"sensor": key, "value": 17.0, "timestamp": moment.isoformat()}],
        transport=Transport.REST,
        decoded=True,
    )
    assert result.stored == 1
    expect(chart).to_have_attribute("data-last-value", "17")
    assert page.evaluate(last_bucket) == [minute.timestamp(), 11.0, None]  # (6 × 10 + 17) / 7
    assert chart.get_attribute("data-points") == str(points)  # the same bucket, no new point

    detection = SimpleNamespace(timestamp=moment, level=250.0, distance=3.0, status="critical")
    detections_broadcast({(sensor.pk, key): [detection]})
    page.wait_for_function(f"() => ({last_bucket})()[2] === 250")


def test_an_operator_acknowledges_an_anomaly_in_the_browser(browser_page, operator):
    sensor = SensorFactory(key="browser.tank")
    anomaly = AnomalyFactory(sensor=sensor, status=Anomaly.State.OPEN)
    page = browser_page(operator)
    page.goto("/dashboard/anomalies/")
    row = page.get_by_test_id(f"anomaly-{anomaly.pk}")
    expect(row.get_by_test_id("anomaly-status")).to_have_text("Open")

    row.get_by_role("button", name="Acknowledge").click()

    expect(page.locator(".messages")).to_contain_text(f"Anomaly {anomaly.pk} of browser.tank acknowledged.")
    row = page.get_by_test_id(f"anomaly-{anomaly.pk}")
    expect(row.get_by_test_id("anomaly-status")).to_have_text("Acknowledged")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(row.get_by_role("button", name="Resolve")).to_be_visible()
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.acknowledged_by) == (Anomaly.State.ACKNOWLEDGED, operator)

    # Its link opens the sensor page centred on it, the anomaly shaded in the chart's range.
    row.get_by_test_id("anomaly-link").click()
    middle = anomaly.started_at + (anomaly.ended_at - anomaly.started_at) / 2
    expect(page).to_have_url(
        re.compile(
            re.escape(f"/dashboard/sensors/browser.tank/?{urlencode({'range': '6h', 'at': middle.isoformat()})}")
        )
    )
    chart_data = json.loads(page.locator("#sensor-chart-data").text_content())
    assert [band["id"] for band in chart_data["anomalies"]] == [anomaly.pk]


FORGE = """async ([url, body]) => {
    const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
    const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token,
        "Content-Type": "application/x-www-form-urlencoded"}, body: body});
    return [response.status, await response.text()];
}"""


def test_a_viewer_sees_no_button_and_a_forged_post_is_refused(browser_page, viewer):
    sensor = SensorFactory(key="browser.gas")
    anomaly = AnomalyFactory(sensor=sensor, status=Anomaly.State.OPEN)
    page = browser_page(viewer)
    page.goto("/dashboard/anomalies/")
    row = page.get_by_test_id(f"anomaly-{anomaly.pk}")
    expect(row).to_be_visible()
    expect(page.get_by_test_id("anomaly-table").get_by_role("button")).to_have_count(0)

    # A POST with a valid CSRF token (the log-out form's): refused for the role, not for CSRF.
    for url, body in [
        (f"/dashboard/anomalies/{anomaly.pk}/acknowledge/", ""),
        (f"/dashboard/anomalies/{anomaly.pk}/resolve/", "cause=resolved"),
        ("/dashboard/sensors/browser.gas/feedback/", "enabled=true"),
        ("/dashboard/sensors/browser.gas/settings/", "warning_level=1"),
    ]:
        status, text = page.evaluate(FORGE, [url, body])
        assert status == 403, (url, status)
        assert "CSRF" not in text, url
    anomaly.refresh_from_db()
    assert anomaly.status == Anomaly.State.OPEN
    assert not DetectorSettings.objects.filter(sensor=sensor).exists()

    page.goto("/dashboard/sensors/browser.gas/")
    expect(page.get_by_test_id("sensor-chart")).to_be_visible()
    expect(page.get_by_test_id("operator-forms")).to_have_count(0)


@pytest.mark.parametrize("width", [375, 1920])
def test_the_pages_fit_a_phone_and_a_wall_screen(browser_page, viewer, width):
    sensor = SensorFactory(key="browser.wide-sensor-key:with.many.parts", name="A sensor with a rather long name")
    AnomalyFactory.create_batch(3, sensor=sensor)
    page = browser_page(viewer, width=width, height=900)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for path, root, shot in [
        (f"/dashboard/sensors/{sensor.key}/?range=24h", ".sensor-page", "sensor"),
        ("/dashboard/anomalies/", ".anomalies-page", "anomalies"),
    ]:
        page.goto(path)
        content = page.locator(root)
        expect(content).to_be_visible()
        box = content.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width, (path, box)
        # Nothing inside sticks out sideways (the anomalies table turns into cards on a phone).
        assert content.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), path
        if root == ".sensor-page":
            canvas = page.get_by_test_id("sensor-chart").locator("canvas").bounding_box()
            assert canvas is not None
            assert canvas["width"] <= width
            assert canvas["width"] >= min(width, 1920) * 0.5
        page.screenshot(path=str(ARTIFACTS_DIR / f"dashboard-{shot}-{width}.png"), full_page=True)
