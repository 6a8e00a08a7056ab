"""Rates in the demo: `make run` fetches them when the network allows, else stores made-up rates under the provider
`demo`, which every answer labels as not real; a fresh install says "never fetched", not "stale". No network: the
providers' answers are recorded (or refused) by the `http` fixture."""

from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.urls import reverse

from rates.health import rates_check
from rates.models import ExchangeRate, RateFetch
from rates.providers.base import ProviderError
from rates.providers.demo import TABLE, demo_rates
from rates.services import rates_demo_load, rates_store
from rates.tests.conftest import ECB_DAILY, fixture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def offline(http, settings):
    """No provider reachable: no keys for XE and OXR (skipped), the ECB's host unreachable."""
    settings.RATES_PROVIDERS = ["xe", "ecb", "oxr"]
    settings.XE_API_ID = settings.XE_API_KEY = settings.OXR_APP_ID = ""
    settings.RATES_BASE = "USD"
    settings.RATES_QUOTES = ["KES", "NGN"]
    http.get(ECB_DAILY, body=requests.ConnectionError("Name or service not known"))
    return http


@pytest.fixture
def viewer_client(client_as, viewer):
    return client_as(viewer)


def fetch_rates(*args: str) -> str:
    out = StringIO()
    call_command("fetch_rates", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_fresh_install_says_never_fetched_not_stale(viewer_client):
    health = rates_check()
    assert (health["state"], health["detail"]) == ("degraded", "never fetched")
    assert (health["never_fetched"], health["stale"], health["demo"]) == (True, False, False)
    page = viewer_client.get(reverse("rates:page")).content.decode()
    assert 'data-testid="never-fetched"' in page
    assert 'data-testid="stale"' not in page
    assert viewer_client.get(reverse("rates-api:rate-list")).json()["stale"] is False


def test_offline_make_run_stores_demo_rates_labelled_everywhere(offline, viewer_client):
    out = fetch_rates("--demo-if-offline")
    assert "No rate provider reachable" in out
    assert "DEMO rates (provider 'demo', made up, not real)" in out
    assert set(ExchangeRate.objects.values_list("provider", flat=True)) == {"demo"}
    assert ExchangeRate.objects.filter(is_inverse=False).values("as_of").distinct().count() == 30  # a chart's worth
    assert RateFetch.objects.filter(provider="ecb", status="failed").count() == 1

    listed = viewer_client.get(reverse("rates-api:rate-list")).json()
    assert listed["demo"] is True
    assert {row["provider"] for row in listed["results"]} == {"demo"}
    converted = viewer_client.get(reverse("rates-api:rate-convert"), {"from": "USD", "to": "KES", "amount": "2"})
    assert (converted.json()["provider"], converted.json()["demo"]) == ("demo", True)
    assert viewer_client.get(reverse("rates-legacy:rate-list")).json()["demo"] is True

    page = viewer_client.get(reverse("rates:page")).content.decode()
    assert "Demo data, not real rates" in page
    assert "Demo data (not real rates)" in page  # the provider column of each row
    health = rates_check()
    assert health["demo"] is True
    assert health["detail"] == "never fetched, last update failed, demo rates (not real) shown"


def test_the_first_real_update_replaces_the_demo_rates(offline, http, viewer_client):
    fetch_rates("--demo-if-offline")
    http.replace("GET", ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    assert fetch_rates("--provider", "ecb").startswith("Stored 12 rates from ecb")
    assert set(ExchangeRate.objects.values_list("provider", flat=True)) == {"ecb"}
    assert viewer_client.get(reverse("rates-api:rate-list")).json()["demo"] is False
    assert 'data-testid="demo"' not in viewer_client.get(reverse("rates:page")).content.decode()
    health = rates_check()
    assert (health["never_fetched"], health["demo"]) == (False, False)


def test_offline_with_real_rates_keeps_them_and_loads_no_demo(offline):
    rates_store(provider="ecb", rates=real_looking_rates())
    out = fetch_rates("--demo-if-offline")
    assert "the last real rates stay" in out
    assert not ExchangeRate.objects.filter(provider="demo").exists()
    assert rates_demo_load() is None


def test_without_the_option_offline_is_still_an_error(offline):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No provider delivered rates"):
        fetch_rates()
    assert not ExchangeRate.objects.exists()


def test_demo_rates_are_refused_next_to_real_ones_and_updates_cannot_ask_for_them(client_as, operator):
    rates_store(provider="ecb", rates=real_looking_rates())
    with pytest.raises(ProviderError, match="real rates are stored"):
        rates_store(provider="demo", rates=demo_rates(demo_rates_day()))
    response = client_as(operator).post(reverse("rates-api:rates-update"), {"provider": "demo"}, format="json")
    assert response.status_code == 400
    assert "provider" in response.json()["fields"]


def test_demo_rates_stay_near_their_table_and_depend_only_on_the_day():
    day = demo_rates_day()
    first, again = demo_rates(day), demo_rates(day)
    assert first == again
    for rate in first:
        assert abs(rate.rate / TABLE[rate.quote] - 1) <= 0.015 + 1e-9
        assert rate.base == "USD"


def demo_rates_day():
    from datetime import date

    return date(2024, 6, 3)


def real_looking_rates():
    """Figures stored under a real provider (only their provider matters here)."""
    return demo_rates(demo_rates_day())
