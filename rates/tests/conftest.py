"""Fixtures of the rates tests: recorded provider answers (written in each provider's documented format)."""

import decimal
from pathlib import Path

import pytest
from django.db import connection

FIXTURES = Path(__file__).parent / "fixtures"
XE_LATEST = "https://xecdapi.xe.com/v1/convert_from.json/"
XE_HISTORIC = "https://xecdapi.xe.com/v1/historic_rate.json/"
ECB_DAILY = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
ECB_90D = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml"
OXR_LATEST = "https://openexchangerates.org/api/latest.json"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def provider_keys(settings):
    settings.XE_API_ID = "sensorhub-test"
    settings.XE_API_KEY = "xe-test-key"
    settings.OXR_APP_ID = "oxr-test-id"
    settings.RATES_PROVIDERS = ["xe", "ecb", "oxr"]
    settings.RATES_BASE = "USD"
    settings.RATES_QUOTES = ["NGN", "GHS", "KES", "UGX", "MAD", "XOF", "EGP"]
    return settings


def as_stored(value: decimal.Decimal) -> decimal.Decimal:
    """What the database gives back for a rate: exact on PostgreSQL; on SQLite (embedded mode) the 15 significant
    digits SQLite keeps of a decimal, as Django reads them back (docs/rates.md says so)."""
    if connection.vendor != "sqlite":
        return value
    fifteen = decimal.Context(prec=15).create_decimal_from_float(float(value))
    return fifteen.quantize(decimal.Decimal(1).scaleb(-18))
