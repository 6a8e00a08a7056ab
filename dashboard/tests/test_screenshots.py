"""Screenshots of every dashboard page at desktop and phone width, taken in Chromium against the ASGI app with
realistic demo data (dashboard/tests/demo.py), and the check that no page scrolls sideways on a phone.

By default the PNGs go to `test-artifacts/screenshots/` (ignored by git), so a test run leaves the tree clean.
`make screenshots` (SCREENSHOTS=1) writes them to `docs/screenshots/<page>-<viewport>.png` (desktop 1440 px, phone
375 px, wall 1920 px), the images the README shows. A new page is one more `Shot` in `PAGES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from common.tests.browser import SCREENSHOT_DIR
from dashboard.tests.demo import demo_seed
from rates.models import ExchangeRate, Provider, RateFetch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("live_groups_restored"),
]


@dataclass(frozen=True)
class Shot:
    name: str  # the file name's stem: docs/screenshots/<name>-desktop.png
    path: str
    ready: str  # a test id that is on the page once it shows its data


# A new page is one more line here (and a row in the README's table).
PAGES = [
    Shot("landing", "/", "open-dashboard"),
    Shot("overview", "/dashboard/", "overview"),
    Shot("sensor", "/dashboard/sensors/alpha-methane/?range=24h", "sensor-chart"),
    Shot("anomalies", "/dashboard/anomalies/", "anomaly-table"),
    Shot("events", "/dashboard/events/", "events"),
    Shot("rates", "/rates/", "rates-table"),
    Shot("jobs", "/dashboard/jobs/", "jobs-filters"),
    Shot("data", "/dashboard/data/", "export-form"),
    Shot("import", "/dashboard/import/", "upload-form"),
]
VIEWPORTS = {"desktop": (1440, 900), "phone": (375, 812), "wall": (1920, 1080)}
OUTPUT = SCREENSHOT_DIR


def rates_seed() -> None:
    """90 days of XE rates of the default pairs, and the fetches that stored them, so the rates page has a chart."""
    today = timezone.now().date()
    start = {"NGN": 1480, "GHS": 15.2, "KES": 129.5, "UGX": 3700, "MAD": 9.9, "XOF": 600, "EGP": 48.5}
    rows = []
    for quote in settings.RATES_QUOTES:
        first = Decimal(str(start.get(quote, 10)))
        for day in range(90):
            drift = Decimal(1) + Decimal(day) / Decimal(3000) + Decimal((day * 7919) % 13 - 6) / Decimal(1500)
            rows.append(
                ExchangeRate(
                    provider=Provider.XE,
                    base_id=settings.RATES_BASE,
                    quote_id=quote,
                    rate=(first * drift).quantize(Decimal("0.000001")),
                    as_of=today - timedelta(days=89 - day),
                    fetched_at=timezone.now() - timedelta(hours=2),
                    is_inverse=False,
                )
            )
    ExchangeRate.objects.bulk_create(rows)
    now = timezone.now()
    RateFetch.objects.create(
        provider=Provider.XE,
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=2),
        status=RateFetch.Status.SUCCESS,
        rows=len(settings.RATES_QUOTES),
    )


def test_screenshots_of_every_page_and_no_sideways_scroll_on_a_phone(browser_page):
    operator = UserFactory(operator=True, email="operator@sensorhub.example")
    demo_seed()
    rates_seed()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    too_wide = []
    for label, (width, height) in VIEWPORTS.items():
        page = browser_page(operator, width=width, height=height)
        for shot in PAGES:
            response = page.goto(shot.path)
            assert response is not None
            assert response.ok, (shot.path, response.status)
            expect(page.get_by_test_id(shot.ready)).to_be_visible()
            if page.get_by_test_id("live-status").count():
                expect(page.get_by_test_id("live-status")).to_have_text("live")
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                too_wide.append((shot.name, label, scroll_width))
            page.screenshot(path=str(OUTPUT / f"{shot.name}-{label}.png"), full_page=True)
    assert too_wide == [], "pages wider than the screen (page, viewport, scrollWidth)"
    for shot in PAGES:
        for label in VIEWPORTS:
            assert (OUTPUT / f"{shot.name}-{label}.png").stat().st_size > 10_000
