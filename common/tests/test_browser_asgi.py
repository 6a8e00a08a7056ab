"""The shared browser fixtures (common/tests/browser.py): a logged-in Chromium page on the ASGI app served by daphne
in this process receives over a real WebSocket a reading the test stores through the ingest service."""

import pytest
from playwright.sync_api import expect

from sensors.ingest.services import readings_ingest
from sensors.models import Transport
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.usefixtures("live_groups_restored")
def test_a_page_on_the_asgi_server_receives_a_stored_reading_live(browser_page, viewer):
    sensor = SensorFactory(key="asgi-smoke")
    page = browser_page(viewer)

    response = page.goto("/")
    assert response is not None
    assert response.ok
    expect(page.get_by_test_id("current-user")).to_have_text(viewer.email)

    # The page opens the sensor's live stream with the browser's own session cookie (same origin).
    page.evaluate(
        """key => new Promise((resolve, reject) => {
            window.received = [];
            const socket = new WebSocket(`ws://${location.host}/ws/sensors/${key}/readings/?history=0`);
            socket.onmessage = event => window.received.push(JSON.parse(event.data));
            socket.onopen = () => resolve();
            socket.onclose = event => reject(new Error(`closed ${event.code}`));
        })""",
        sensor.key,
    )
    page.wait_for_timeout(200)  # the consumer joins its group right after accepting

    result = readings_ingest(
        messages=[{"sensor": sensor.key, "value": 21.5, "timestamp": "2024-12-01T12:00:00Z"}],
        transport=Transport.REST,
        decoded=True,
    )
    assert result.stored == 1

    page.wait_for_function("() => JSON.stringify(window.received).includes('21.5')", timeout=5000)
