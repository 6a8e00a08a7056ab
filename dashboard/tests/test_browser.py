"""The overview and the events page in a real browser (Chromium) against the ASGI app: readings stored through the
ingest service and events emitted by the services appear without a reload, over the pages' summary sockets."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboard.tests.demo import demo_seed
from detection.models import SensorEvent
from detection.services.events import sensor_events_store, system_event_emit
from sensors.ingest.services import readings_ingest
from sensors.models import Transport

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("live_groups_restored"),
]


def test_a_stored_reading_appears_on_the_overview_without_reload(browser_page, viewer):
    sensors = demo_seed()
    page = browser_page(viewer)
    page.goto("/dashboard/")
    row = page.locator('tr[data-sensor="bravo-humidity"]')
    expect(row.locator("[data-field=state]")).to_have_text("silent")
    expect(page.get_by_test_id("live-status")).to_have_text("live")  # the history arrived: the socket is joined
    expect(page.locator('[data-state-count="silent"] strong')).to_have_text("1")

    result = readings_ingest(
        messages=[{"sensor": "bravo-humidity", "value": 61.25, "timestamp": timezone.now().isoformat()}],
        transport=Transport.REST,
        decoded=True,
    )
    assert result.stored == 1
    expect(row.locator("[data-field=value]")).to_have_text("61.25", timeout=3000)
    expect(row.locator("[data-field=age]")).to_have_text("0 s")
    # Its latest detection was ok: no longer silent, so ok, and the counts follow.
    expect(row.locator("[data-field=state]")).to_have_text("ok")
    expect(page.locator('[data-state-count="silent"] strong')).to_have_text("0")
    expect(page.locator('[data-state-count="ok"] strong')).to_have_text("4")

    # A reading older than the shown one does not replace it (the latest is the greatest timestamp).
    older = timezone.now() - timedelta(hours=1)
    readings_ingest(
        messages=[{"sensor": "bravo-humidity", "value": 1.0, "timestamp": older.isoformat()}],
        transport=Transport.REST,
        decoded=True,
    )
    page.wait_for_timeout(500)
    expect(row.locator("[data-field=value]")).to_have_text("61.25")
    assert sensors["bravo-humidity"].key == "bravo-humidity"


def test_new_events_are_prepended_live(browser_page, viewer):
    sensors = demo_seed()
    page = browser_page(viewer)
    page.goto("/dashboard/events/")
    expect(page.get_by_test_id("live-status")).to_have_text("live")
    rows = page.locator("[data-testid=events] tbody tr")
    expect(rows).to_have_count(5)

    system_event_emit(kind="alert_critical", job="import_readings", message="Import failed: line 12 has no value")
    expect(rows).to_have_count(6)
    expect(rows.first).to_contain_text("Import failed: line 12 has no value")
    expect(rows.first).to_contain_text("alert_critical")

    event = SensorEvent(
        sensor=sensors["alpha-methane"], kind="ok", at=timezone.now(), message="alpha-methane: alarm over"
    )
    sensor_events_store([("alpha-methane", event)])
    expect(rows).to_have_count(7)
    expect(rows.first).to_contain_text("alarm over")
    expect(rows.first.get_by_role("link", name="alpha-methane")).to_have_attribute(
        "href", "/dashboard/sensors/alpha-methane/"
    )
