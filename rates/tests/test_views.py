"""The rates page: login and the viewer role, the table, and the server-drawn SVG chart."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from rates.charts import line_chart
from rates.tests.factories import ExchangeRateFactory

pytestmark = pytest.mark.django_db


def test_page_needs_login(client):
    response = client.get(reverse("rates:page"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_page_needs_the_viewer_role(client):
    client.force_login(UserFactory())
    assert client.get(reverse("rates:page")).status_code == 403


def test_page_shows_the_table_and_the_chart(client, viewer, settings):
    settings.RATES_BASE, settings.RATES_QUOTES = "EUR", ["USD"]
    today = timezone.now().date()
    for days, rate in [(2, "1.0848"), (1, "1.0871")]:
        ExchangeRateFactory(as_of=today - timedelta(days=days), rate=Decimal(rate))
    client.force_login(viewer)
    response = client.get(reverse("rates:page"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="rates-table"' in html
    assert "1.0871" in html
    assert "<polyline" in html
    assert "European Central Bank" in html
    assert "<script" not in html


def test_page_without_data_for_the_pair(client, viewer):
    client.force_login(viewer)
    html = client.get(reverse("rates:page"), {"base": "usd", "quote": "kes", "days": "30"}).content.decode()
    assert 'data-testid="no-chart"' in html
    assert "USD → KES over 30 days" in html


def test_chart_geometry():
    today = timezone.now().date()
    chart = line_chart([(today, Decimal("1")), (today + timedelta(days=2), Decimal("3"))], width=300, height=200)
    # left edge at the lowest value, right edge at the highest
    assert chart.points == f"{chart.left:.1f},{chart.bottom:.1f} {chart.right:.1f},{chart.top:.1f}"
    assert (chart.y_min, chart.y_max, chart.count) == ("1", "3", 2)
    assert line_chart([]) is None
