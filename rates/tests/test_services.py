"""Storing, upserting, fallback between providers, and the ECB history import."""

import zipfile
from datetime import date
from decimal import Decimal

import pytest
import requests
import responses

from common.exceptions import ApplicationError
from rates.models import ExchangeRate, RateFetch
from rates.providers import PublishedRate
from rates.services import (
    RatesUnavailableError,
    inverse_rate,
    rates_fetch,
    rates_import_history,
    rates_store,
    rates_update,
)
from rates.tests.conftest import ECB_DAILY, FIXTURES, OXR_LATEST, XE_LATEST, as_stored, fixture_bytes
from rates.tests.factories import ExchangeRateFactory

pytestmark = pytest.mark.django_db


def stored(provider: str, base: str, quote: str, as_of: date) -> ExchangeRate:
    return ExchangeRate.objects.get(provider=provider, base=base, quote=quote, as_of=as_of)


def test_inverse_is_exact_to_18_places():
    # 1 / 130.5 = 0.00766283524904214559386973…, rounded half-even at the 18th place.
    assert inverse_rate(Decimal("130.5")) == Decimal("0.007662835249042146")
    # 1 / 1.0871 = 0.91987857602796430871…
    assert inverse_rate(Decimal("1.0871")) == Decimal("0.919878576027964309")
    assert inverse_rate(Decimal("0.5")) == Decimal("2")


def test_both_directions_are_stored_and_named(http, provider_keys):
    http.get(XE_LATEST, body=fixture_bytes("xe_convert_from.json"))
    fetch = rates_fetch(provider="xe")
    assert fetch.status == RateFetch.Status.SUCCESS
    assert fetch.rows == 14
    assert fetch.as_of == date(2024, 6, 3)
    usd_kes = stored("xe", "USD", "KES", date(2024, 6, 3))
    kes_usd = stored("xe", "KES", "USD", date(2024, 6, 3))
    assert (usd_kes.rate, usd_kes.is_inverse) == (Decimal("130.5"), False)
    assert (kes_usd.rate, kes_usd.is_inverse) == (as_stored(Decimal("0.007662835249042146")), True)
    # 1 USD = 130.5 KES and 1 KES = 0.00766… USD: the product is 1 to the stored precision.
    assert abs(usd_kes.rate * kes_usd.rate - 1) < Decimal("1e-15")


def test_a_second_fetch_the_same_day_updates_in_place(http):
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    first = rates_fetch(provider="ecb")
    before = stored("ecb", "EUR", "USD", date(2024, 6, 3))
    http.replace(responses.GET, ECB_DAILY, body=fixture_bytes("ecb_daily.xml").replace(b"1.0871", b"1.0875"))
    second = rates_fetch(provider="ecb")
    after = stored("ecb", "EUR", "USD", date(2024, 6, 3))
    assert ExchangeRate.objects.count() == first.rows == second.rows == 12
    assert after.pk == before.pk
    assert after.rate == Decimal("1.0875")
    assert after.fetched_at > before.fetched_at
    assert stored("ecb", "USD", "EUR", date(2024, 6, 3)).rate == as_stored(inverse_rate(Decimal("1.0875")))


def test_unknown_currencies_are_skipped():
    rates = [
        PublishedRate("USD", "ZZZ", Decimal(2), date(2024, 6, 3)),
        PublishedRate("USD", "KES", Decimal(130), date(2024, 6, 3)),
    ]
    assert rates_store(provider="oxr", rates=rates) == 2
    assert not ExchangeRate.objects.filter(quote="ZZZ").exists()


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "body": b"Service unavailable"},
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
        {"body": b'{"from": "USD", "to": "garbage"}'},
    ],
    ids=["http-error", "timeout", "garbage"],
)
def test_fallback_to_the_next_provider(http, provider_keys, failure):
    http.get(XE_LATEST, **failure)
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    fetch = rates_update()
    assert fetch.provider == "ecb"
    assert list(RateFetch.objects.order_by("started_at").values_list("provider", "status")) == [
        ("xe", "failed"),
        ("ecb", "success"),
    ]
    assert RateFetch.objects.get(provider="xe").error
    assert not ExchangeRate.objects.filter(provider="xe").exists()


def test_a_provider_without_keys_is_skipped(http, settings):
    settings.RATES_PROVIDERS = ["xe", "ecb"]
    settings.XE_API_ID = ""
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    assert rates_update().provider == "ecb"
    assert RateFetch.objects.get(provider="xe").status == RateFetch.Status.SKIPPED


def test_when_every_provider_fails_the_last_good_rates_stay(http, provider_keys):
    good = ExchangeRateFactory(provider="ecb", as_of=date(2024, 6, 3), rate=Decimal("1.0871"))
    http.get(XE_LATEST, status=500)
    http.get(ECB_DAILY, body=b"<broken")
    http.get(OXR_LATEST, body=requests.exceptions.ReadTimeout())
    with pytest.raises(RatesUnavailableError) as caught:
        rates_update()
    for name in ("xe", "ecb", "oxr"):
        assert f"{name}:" in caught.value.detail
    assert list(ExchangeRate.objects.all()) == [good]
    good.refresh_from_db()
    assert good.rate == Decimal("1.0871")
    assert set(RateFetch.objects.values_list("status", flat=True)) == {"failed"}
    assert RateFetch.objects.filter(finished_at__isnull=False).count() == 3


def test_one_named_provider_has_no_fallback(http, provider_keys):
    http.get(ECB_DAILY, status=500)
    with pytest.raises(RatesUnavailableError):
        rates_update(provider="ecb")
    assert RateFetch.objects.count() == 1


def test_progress_is_reported(http, provider_keys):
    http.get(XE_LATEST, status=500)
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    calls = []
    rates_update(progress=lambda current, total, text: calls.append((current, total, text)))
    assert calls[0] == (0, 3, "Fetching from xe")
    assert calls[1] == (1, 3, "Fetching from ecb")
    assert calls[-1][:2] == (3, 3)


# ---------------------------------------------------------------- ECB history import


def test_import_history_csv_with_na_cells():
    result = rates_import_history(path=FIXTURES / "ecb_hist.csv")
    assert (result.days, result.rates, result.rows) == (5, 22, 44)
    assert (result.first, result.last) == (date(2004, 12, 31), date(2024, 6, 3))
    assert ExchangeRate.objects.filter(provider="ecb").count() == 44
    assert stored("ecb", "EUR", "TRL", date(2004, 12, 31)).rate == Decimal("1836200")
    assert stored("ecb", "EUR", "CYP", date(2005, 1, 3)).rate == Decimal("0.5815")
    assert not ExchangeRate.objects.filter(quote="CYP", as_of=date(2024, 6, 3)).exists()
    fetch = RateFetch.objects.get()
    assert (fetch.status, fetch.rows, fetch.as_of) == ("success", 44, date(2024, 6, 3))


def test_import_history_zip_and_reimport_is_idempotent(tmp_path):
    archive = tmp_path / "eurofxref-hist.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(FIXTURES / "ecb_hist.csv", "eurofxref-hist.csv")
    rates_import_history(path=archive)
    snapshot = set(ExchangeRate.objects.values_list("provider", "base", "quote", "as_of", "rate", "is_inverse"))
    ids = set(ExchangeRate.objects.values_list("pk", flat=True))
    again = rates_import_history(path=archive)
    assert again.rows == 44
    assert set(ExchangeRate.objects.values_list("provider", "base", "quote", "as_of", "rate", "is_inverse")) == snapshot
    assert set(ExchangeRate.objects.values_list("pk", flat=True)) == ids


def test_import_stops_at_a_malformed_line_and_stores_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,USD,JPY,\n2024-06-03,1.0871,169.85,\n2024-05-31,oops,170.55,\n")
    with pytest.raises(ApplicationError, match="line 3"):
        rates_import_history(path=bad)
    assert not ExchangeRate.objects.exists()
    assert not RateFetch.objects.exists()


def test_import_of_a_zip_without_csv(tmp_path):
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("readme.txt", "nothing")
    with pytest.raises(ApplicationError, match="no .csv"):
        rates_import_history(path=archive)
