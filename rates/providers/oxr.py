"""Open Exchange Rates: `latest.json` and `historical/YYYY-MM-DD.json`, key `OXR_APP_ID` as `app_id`.

Answer: `{"timestamp": 1717372800, "base": "USD", "rates": {"EUR": 0.92, ...}}`; 1 base = rate currency.
Errors come as `{"error": true, "status": 401, "message": "invalid_app_id", "description": "..."}`.
The free plan allows base USD only, so no base is asked for.
"""

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin

import requests
from django.conf import settings

from rates.models import Provider
from rates.providers.base import (
    ProviderError,
    ProviderNotConfiguredError,
    PublishedRate,
    RateProvider,
    http_get,
    json_body,
    parse_code,
    parse_rate,
    parsing,
)

NAME = Provider.OXR.value


def parse_rates_json(body: dict[str, Any], *, on: date | None = None) -> list[PublishedRate]:
    """Rates of a latest/historical answer; the day is `on` for historical files, else the timestamp's UTC date.

    The base's own entry (`"USD": 1`) is left out.
    """
    if body.get("error"):
        raise ProviderError(f"oxr: {body.get('message')}: {body.get('description')}"[:500])
    with parsing(NAME):
        base = parse_code(body["base"], provider=NAME)
        as_of = on or datetime.fromtimestamp(int(body["timestamp"]), tz=UTC).date()
        rates = [
            PublishedRate(base, parse_code(code, provider=NAME), parse_rate(value, provider=NAME), as_of)
            for code, value in body["rates"].items()
            if code.upper() != base
        ]
    if not rates:
        raise ProviderError("oxr: the answer holds no rates")
    return rates


class OxrProvider(RateProvider):
    def check_configured(self) -> None:
        if not settings.OXR_APP_ID:
            raise ProviderNotConfiguredError("oxr: OXR_APP_ID is not set")

    def fetch(self, *, session: requests.Session, on: date | None = None) -> list[PublishedRate]:
        self.check_configured()
        path = "latest.json" if on is None else f"historical/{on.isoformat()}.json"
        response = http_get(
            session, urljoin(settings.RATES_OXR_URL, path), provider=NAME, params={"app_id": settings.OXR_APP_ID}
        )
        return parse_rates_json(json_body(response, provider=NAME), on=on)
