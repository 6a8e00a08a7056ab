from datetime import date
from decimal import Decimal

import factory
from django.utils import timezone

from rates.models import ExchangeRate, Provider, RateFetch


class ExchangeRateFactory(factory.django.DjangoModelFactory):
    """A published ECB rate by default (the currencies come from migration 0002)."""

    provider = Provider.ECB
    base_id = "EUR"
    quote_id = "USD"
    rate = Decimal("1.0871")
    as_of = date(2024, 6, 3)
    fetched_at = factory.LazyFunction(timezone.now)
    is_inverse = False

    class Meta:
        model = ExchangeRate


class RateFetchFactory(factory.django.DjangoModelFactory):
    provider = Provider.ECB
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    status = RateFetch.Status.SUCCESS
    rows = 2

    class Meta:
        model = RateFetch
