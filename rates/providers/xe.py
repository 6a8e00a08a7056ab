"""XE Currency Data API: `convert_from.json` (latest) and `historic_rate.json` (a day), HTTP basic auth.

Answer: `{"from": "USD", "amount": 1.0, "timestamp": "2024-06-03T00:00:00Z", "to": [{"quotecurrency": "NGN",
"mid": 1480.25}, ...]}`; `mid` is units of the quote currency for `amount` units of `from`.
"""

from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
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

NAME = Provider.XE.value


def parse_convert_from(body: dict[str, Any]) -> list[PublishedRate]:
    """Rates of `body`: 1 `from` = mid / amount quote (amount is 1 in our requests, but honour it).

    The day is the UTC date of `timestamp`.
    """
    with parsing(NAME):
        base = parse_code(body["from"], provider=NAME)
        amount = parse_rate(body.get("amount", Decimal(1)), provider=NAME)
        stamp = datetime.fromisoformat(str(body["timestamp"]).replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        as_of = stamp.astimezone(UTC).date()
        rates = []
        for item in body["to"]:
            mid = parse_rate(item["mid"], provider=NAME)
            with localcontext(prec=40):
                rate = mid / amount
            rates.append(PublishedRate(base, parse_code(item["quotecurrency"], provider=NAME), rate, as_of))
    if not rates:
        raise ProviderError("xe: the answer holds no rates")
    return rates


class XeProvider(RateProvider):
    def check_configured(self) -> None:
        if not (settings.XE_API_ID and settings.XE_API_KEY):
            raise ProviderNotConfiguredError("xe: XE_API_ID and XE_API_KEY are not set")

    def fetch(self, *, session: requests.Session, on: date | None = None) -> list[PublishedRate]:
        self.check_configured()
        params = {"from": settings.RATES_BASE, "to": ",".join(settings.RATES_QUOTES), "amount": "1"}
        if on is None:
            url = urljoin(settings.RATES_XE_URL, "convert_from.json/")
        else:
            url = urljoin(settings.RATES_XE_URL, "historic_rate.json/")
            params["date"] = on.isoformat()
        response = http_get(session, url, provider=NAME, params=params, auth=(settings.XE_API_ID, settings.XE_API_KEY))
        rates = parse_convert_from(json_body(response, provider=NAME))
        if rates[0].base != settings.RATES_BASE.upper():
            raise ProviderError(f"xe: asked for base {settings.RATES_BASE}, got {rates[0].base}")
        return rates
