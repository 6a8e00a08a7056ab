"""Parsing of each provider's documented format, from recorded answers; errors become ProviderError."""

import json
from datetime import date
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from rates.providers import ProviderError, ProviderNotConfiguredError, get_provider, provider_order
from rates.providers.base import new_session, parse_rate
from rates.providers.ecb import iter_history_csv, parse_reference_xml
from rates.providers.oxr import parse_rates_json
from rates.providers.xe import parse_convert_from
from rates.tests.conftest import (
    ECB_90D,
    ECB_DAILY,
    FIXTURES,
    OXR_LATEST,
    XE_HISTORIC,
    XE_LATEST,
    fixture_bytes,
)


def xe_body(name: str = "xe_convert_from.json") -> dict:
    return json.loads(fixture_bytes(name), parse_float=Decimal)


# ---------------------------------------------------------------- XE


def test_xe_mid_is_quote_units_per_one_base():
    rates = {r.quote: r for r in parse_convert_from(xe_body())}
    assert set(rates) == {"NGN", "GHS", "KES", "UGX", "MAD", "XOF", "EGP"}
    assert rates["NGN"].base == "USD"
    assert rates["NGN"].rate == Decimal("1480.253291")
    assert rates["KES"].rate == Decimal("130.5")
    assert rates["NGN"].as_of == date(2024, 6, 3)


def test_xe_rate_is_divided_by_the_amount_asked():
    body = xe_body()
    body["amount"] = Decimal(100)
    body["to"] = [{"quotecurrency": "KES", "mid": Decimal("13050.00")}]
    assert parse_convert_from(body)[0].rate == Decimal("130.5")


def test_xe_fetch_sends_basic_auth_and_the_configured_pairs(http, provider_keys):
    http.get(
        XE_LATEST,
        body=fixture_bytes("xe_convert_from.json"),
        match=[
            matchers.query_param_matcher({"from": "USD", "to": "NGN,GHS,KES,UGX,MAD,XOF,EGP", "amount": "1"}),
            matchers.header_matcher({"Authorization": requests.auth._basic_auth_str("sensorhub-test", "xe-test-key")}),
        ],
    )
    rates = get_provider("xe").fetch(session=new_session())
    assert len(rates) == 7


def test_xe_historic_rate_for_a_date(http, provider_keys):
    http.get(
        XE_HISTORIC,
        body=fixture_bytes("xe_historic_rate.json"),
        match=[
            matchers.query_param_matcher(
                {"from": "USD", "to": "NGN,GHS,KES,UGX,MAD,XOF,EGP", "amount": "1", "date": "2024-05-31"}
            )
        ],
    )
    rates = get_provider("xe").fetch(session=new_session(), on=date(2024, 5, 31))
    assert {(r.quote, r.rate, r.as_of) for r in rates} == {
        ("NGN", Decimal("1475.11"), date(2024, 5, 31)),
        ("KES", Decimal("131.25"), date(2024, 5, 31)),
    }


def test_xe_bad_credentials_is_a_provider_error(http, provider_keys):
    http.get(XE_LATEST, status=401, body=fixture_bytes("xe_unauthorized.json"))
    with pytest.raises(ProviderError, match="HTTP 401"):
        get_provider("xe").fetch(session=new_session())


def test_xe_without_keys_is_not_configured(settings):
    settings.XE_API_ID = settings.XE_API_KEY = ""
    with pytest.raises(ProviderNotConfiguredError):
        get_provider("xe").fetch(session=new_session())


# ---------------------------------------------------------------- ECB


def test_ecb_daily_xml():
    days = parse_reference_xml(fixture_bytes("ecb_daily.xml"))
    assert list(days) == [date(2024, 6, 3)]
    rates = {r.quote: r for r in days[date(2024, 6, 3)]}
    assert rates["USD"].base == "EUR"
    assert rates["USD"].rate == Decimal("1.0871")
    assert rates["GBP"].rate == Decimal("0.85098")
    assert rates["ISK"].rate == Decimal("149.50")


def test_ecb_fetch_for_a_saturday_takes_friday_from_the_90_day_file(http):
    http.get(ECB_90D, body=fixture_bytes("ecb_hist_90d.xml"))
    rates = get_provider("ecb").fetch(session=new_session(), on=date(2024, 6, 1))
    assert {(r.quote, r.rate, r.as_of) for r in rates} == {
        ("USD", Decimal("1.0848"), date(2024, 5, 31)),
        ("JPY", Decimal("170.55"), date(2024, 5, 31)),
    }


def test_ecb_fetch_before_the_90_day_file_says_to_import(http):
    http.get(ECB_90D, body=fixture_bytes("ecb_hist_90d.xml"))
    with pytest.raises(ProviderError, match="import_rates"):
        get_provider("ecb").fetch(session=new_session(), on=date(2024, 1, 1))


def test_ecb_historical_csv_skips_na_cells_and_the_trailing_column():
    with (FIXTURES / "ecb_hist.csv").open(newline="") as stream:
        rates = list(iter_history_csv(stream))
    assert len(rates) == 22
    assert {r.base for r in rates} == {"EUR"}
    by_key = {(r.as_of, r.quote): r.rate for r in rates}
    assert by_key[(date(2004, 12, 31), "TRL")] == Decimal("1836200")
    assert (date(2024, 6, 3), "CYP") not in by_key
    assert (date(2004, 12, 31), "TRY") not in by_key
    assert by_key[(date(2024, 5, 30), "GBP")] == Decimal("0.85030")


def test_ecb_historical_csv_names_the_bad_line():
    lines = ["Date,USD,JPY,\n", "2024-06-03,1.0871,169.85,\n", "2024-05-31,1.08x,170.55,\n"]
    with pytest.raises(ProviderError, match="line 3"):
        list(iter_history_csv(iter(lines)))


# ---------------------------------------------------------------- Open Exchange Rates


def test_oxr_latest_leaves_out_the_base_itself():
    rates = {r.quote: r for r in parse_rates_json(json.loads(fixture_bytes("oxr_latest.json"), parse_float=Decimal))}
    assert "USD" not in rates
    assert rates["EUR"].rate == Decimal("0.919878")
    assert rates["XAU"].rate == Decimal("0.00042895")
    assert rates["EUR"].as_of == date(2024, 6, 3)


def test_oxr_fetch_sends_the_app_id(http, provider_keys):
    http.get(
        OXR_LATEST,
        body=fixture_bytes("oxr_latest.json"),
        match=[matchers.query_param_matcher({"app_id": "oxr-test-id"})],
    )
    assert len(get_provider("oxr").fetch(session=new_session())) == 6


def test_oxr_error_document_is_a_provider_error(http, provider_keys):
    http.get(OXR_LATEST, status=200, body=fixture_bytes("oxr_error.json"))
    with pytest.raises(ProviderError, match="invalid_app_id"):
        get_provider("oxr").fetch(session=new_session())


# ---------------------------------------------------------------- garbage, timeouts and numbers


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Service unavailable</html>",
        b"[]",
        b'{"from": "USD", "timestamp": "2024-06-03T00:00:00Z"}',
        b'{"from": "USD", "timestamp": "yesterday", "to": [{"quotecurrency": "NGN", "mid": 1}]}',
        b'{"from": "USD", "timestamp": "2024-06-03T00:00:00Z", "to": [{"quotecurrency": "NGN", "mid": -3}]}',
        b'{"from": "USD", "timestamp": "2024-06-03T00:00:00Z", "to": [{"quotecurrency": "NGN", "mid": "abc"}]}',
        b'{"from": "USD", "timestamp": "2024-06-03T00:00:00Z", "to": []}',
    ],
)
def test_xe_garbage_is_a_provider_error(http, provider_keys, body):
    http.get(XE_LATEST, body=body)
    with pytest.raises(ProviderError):
        get_provider("xe").fetch(session=new_session())


@pytest.mark.parametrize(
    "body",
    [b"not xml at all", b"<Envelope/>", fixture_bytes("ecb_daily.xml").replace(b"'1.0871'", b"'NaN'")],
)
def test_ecb_garbage_is_a_provider_error(http, body):
    http.get(ECB_DAILY, body=body)
    with pytest.raises(ProviderError):
        get_provider("ecb").fetch(session=new_session())


def test_a_timeout_is_a_provider_error(http):
    http.get(ECB_DAILY, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError, match="ReadTimeout"):
        get_provider("ecb").fetch(session=new_session())


def test_requests_use_the_configured_timeout(settings):
    settings.RATES_HTTP_TIMEOUT = 2.5
    with responses.RequestsMock() as mock:
        mock.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
        get_provider("ecb").fetch(session=new_session())
        assert mock.calls[0].request.req_kwargs["timeout"] == 2.5


@pytest.mark.parametrize("value", [1.5, True, "0", "-1", "Infinity", "1e12"])
def test_rates_must_be_exact_positive_and_in_range(value):
    with pytest.raises(ProviderError):
        parse_rate(value, provider="test")


def test_provider_order_puts_the_configured_first(settings):
    settings.RATES_PROVIDERS = ["oxr", "ecb"]
    assert provider_order() == ["oxr", "ecb", "xe", "demo"]  # demo last: made up, only without real rates


def test_unknown_provider():
    with pytest.raises(ProviderError, match="unknown provider"):
        get_provider("nope")
