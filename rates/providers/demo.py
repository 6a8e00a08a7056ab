"""Demo rates: made-up, plausible values for a machine that cannot reach any provider (`make run` offline).

They are stored under the provider `demo`, which every page and API answer labels as not real (`demo: true`), and
only on an install that has no real rates: the first real update deletes them (rates.services). Values are a fixed
table of round figures near real ones, with a small made-up daily wobble so that the chart has a shape; they are
not a forecast, a history or anything else than a placeholder.
"""

import math
from datetime import date
from decimal import Decimal

import requests
from django.utils import timezone

from rates.providers.base import PublishedRate, RateProvider

NAME = "demo"
BASE = "USD"
# Units of each currency per US dollar, rounded, near the rates of 2024 (never updated: these are not rates).
TABLE: dict[str, Decimal] = {
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "JPY": Decimal("155"),
    "CHF": Decimal("0.90"),
    "NOK": Decimal("10.7"),
    "SEK": Decimal("10.6"),
    "NGN": Decimal("1480"),
    "GHS": Decimal("14.8"),
    "KES": Decimal("130"),
    "UGX": Decimal("3800"),
    "MAD": Decimal("10.0"),
    "XOF": Decimal("603"),
    "EGP": Decimal("47.5"),
}


def demo_rates(day: date) -> list[PublishedRate]:
    """The demo rates of `day`: the table with a wobble of at most ±1.5 % that depends only on the day."""
    rates = []
    for index, (quote, rate) in enumerate(TABLE.items()):
        wobble = Decimal(str(round(0.015 * math.sin(day.toordinal() / 5 + index), 6)))
        rates.append(PublishedRate(base=BASE, quote=quote, rate=(rate * (1 + wobble)).normalize(), as_of=day))
    return rates


class DemoProvider(RateProvider):
    """No network: the demo rates of the day asked for (today by default)."""

    def fetch(self, *, session: requests.Session, on: date | None = None) -> list[PublishedRate]:
        return demo_rates(on or timezone.now().date())
