"""Latest and as-of lookups, weekends, cross rates and rounding checked against hand-computed Decimals."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from common.exceptions import ApplicationError
from rates.models import rate_as_text
from rates.providers import PublishedRate
from rates.selectors import amount_convert, is_stale, rate_history, rate_list, rate_resolve, rates_status
from rates.services import rates_store
from rates.tests.factories import RateFetchFactory

pytestmark = pytest.mark.django_db

FRI, SAT, SUN, MON = date(2024, 5, 31), date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)


def publish(provider: str, base: str, day: date, **rates: str) -> None:
    rates_store(provider=provider, rates=[PublishedRate(base, code, Decimal(v), day) for code, v in rates.items()])


@pytest.fixture
def ecb_week(settings):
    settings.RATES_PROVIDERS = ["ecb", "xe", "oxr"]
    publish("ecb", "EUR", FRI, USD="1.0848", JPY="170.55", GBP="0.85158", ISK="149.50")
    publish("ecb", "EUR", MON, USD="1.0871", JPY="169.85", GBP="0.85098", ISK="149.50", CHF="0.9787")


def test_latest_list_is_the_newest_day_of_each_provider(ecb_week):
    publish("xe", "USD", FRI, KES="131.25")
    rows = rate_list(base="EUR")
    assert {(r.provider, r.quote_id, r.as_of) for r in rows} == {
        ("ecb", "USD", MON),
        ("ecb", "JPY", MON),
        ("ecb", "GBP", MON),
        ("ecb", "ISK", MON),
        ("ecb", "CHF", MON),
    }
    assert {(r.provider, r.base_id, r.quote_id) for r in rate_list(quote="KES")} == {("xe", "USD", "KES")}


@pytest.mark.parametrize("day", [SAT, SUN])
def test_weekend_dates_fall_back_to_friday(ecb_week, day):
    rows = rate_list(base="EUR", quote="USD", on=day)
    assert [(r.as_of, r.rate) for r in rows] == [(FRI, Decimal("1.0848"))]
    resolved = rate_resolve(base="EUR", quote="USD", on=day)
    assert (resolved.as_of, resolved.rate) == (FRI, Decimal("1.0848"))


def test_list_takes_a_fixed_number_of_queries(ecb_week, django_assert_num_queries):
    publish("xe", "USD", FRI, KES="131.25", NGN="1475.11")
    with django_assert_num_queries(5):  # one per provider (demo too) for its day, one for the rows
        rows = list(rate_list())
    assert len(rows) == 2 * (5 + 2)


def test_a_date_before_any_rate_has_none(ecb_week):
    assert list(rate_list(on=date(2000, 1, 1))) == []
    with pytest.raises(ApplicationError) as caught:
        rate_resolve(base="EUR", quote="USD", on=date(2000, 1, 1))
    assert caught.value.status_code == 404


def test_direct_and_inverse(ecb_week):
    assert rate_resolve(base="EUR", quote="USD").rate == Decimal("1.0871")
    inverse = rate_resolve(base="USD", quote="EUR")
    # From the published rate, not the stored rounded inverse: 1 / 1.0871 to 40 digits.
    assert rate_as_text(inverse.rate) == "0.919878576027964309"
    assert (inverse.as_of, inverse.provider, inverse.via) == (MON, "ecb", None)


def test_cross_rate_through_the_common_base(ecb_week):
    resolved = rate_resolve(base="USD", quote="JPY")
    # 169.85 / 1.0871 = 156.2413761383497378346…
    assert rate_as_text(resolved.rate) == "156.241376138349737835"
    assert (resolved.as_of, resolved.provider, resolved.via) == (MON, "ecb", "EUR")


def test_cross_rate_legs_come_from_the_same_day(ecb_week):
    # CHF only exists on Monday: as of Saturday there is no USD→CHF.
    with pytest.raises(ApplicationError):
        rate_resolve(base="USD", quote="CHF", on=SAT)
    # USD→JPY as of Saturday uses Friday's two legs: 170.55 / 1.0848 = 157.2179203539823008849…
    resolved = rate_resolve(base="USD", quote="JPY", on=SAT)
    assert rate_as_text(resolved.rate) == "157.217920353982300885"
    assert resolved.as_of == FRI


@pytest.mark.parametrize(
    ("amount", "base", "quote", "result"),
    [
        # 100 × 169.85 / 1.0871 = 15624.1376… → JPY has no minor units
        ("100", "USD", "JPY", "15624"),
        # 250 × 0.85098 / 1.0871 = 195.69956… → 195.70
        ("250", "USD", "GBP", "195.70"),
        # 3 × 149.50 = 448.5 exactly: half-up gives 449 (half-even would give 448)
        ("3", "EUR", "ISK", "449"),
        ("-3", "EUR", "ISK", "-449"),
        # 1000 × 1.0871 = 1087.1 → two places keep the trailing zero
        ("1000", "EUR", "USD", "1087.10"),
        # 15624 JPY back to USD: 15624 × 1.0871 / 169.85 = 99.99911… → 100.00
        ("15624", "JPY", "USD", "100.00"),
        ("0", "EUR", "USD", "0.00"),
        ("12.34", "EUR", "EUR", "12.34"),
    ],
)
def test_conversion_rounds_to_the_target_minor_units(ecb_week, amount, base, quote, result):
    assert str(amount_convert(amount=Decimal(amount), base=base, quote=quote).result) == result


def test_conversion_through_xe_cross_rates(settings):
    publish("xe", "USD", MON, KES="130.5", NGN="1480.253291")
    # 1000 KES → NGN = 1000 × 1480.253291 / 130.5 = 11342.93709578544… → 11342.94
    conversion = amount_convert(amount=Decimal(1000), base="KES", quote="NGN")
    assert str(conversion.result) == "11342.94"
    assert rate_as_text(conversion.rate.rate) == "11.342937095785440613"
    assert conversion.rate.via == "USD"


def test_three_decimal_currency(settings):
    publish("oxr", "USD", MON, KWD="0.30665")
    # 12.345 USD × 0.30665 = 3.78559425 → KWD has three places → 3.786
    assert str(amount_convert(amount=Decimal("12.345"), base="USD", quote="KWD").result) == "3.786"


def test_newest_day_wins_then_provider_order(settings):
    settings.RATES_PROVIDERS = ["xe", "ecb"]
    publish("ecb", "EUR", MON, USD="1.0871")
    publish("oxr", "USD", MON, EUR="0.92")
    publish("xe", "USD", FRI, EUR="0.9218")
    resolved = rate_resolve(base="EUR", quote="USD")
    assert (resolved.provider, resolved.rate) == ("ecb", Decimal("1.0871"))  # ecb before oxr in the order
    resolved = rate_resolve(base="EUR", quote="USD", on=SAT)
    assert resolved.provider == "xe"


def test_unknown_currency_is_named():
    with pytest.raises(ApplicationError) as caught:
        amount_convert(amount=Decimal(1), base="EUR", quote="ABC")
    assert caught.value.fields == {"to": ["Unknown currency 'ABC': not an ISO 4217 code known here."]}


def test_stale_past_the_configured_age(settings):
    settings.RATES_STALE_AFTER_HOURS = 26
    now = timezone.now()
    assert not is_stale(now - timedelta(hours=25))
    assert is_stale(now - timedelta(hours=27))
    assert not is_stale(None)  # nothing fetched is "never fetched" (rates_status), not stale
    # Answers for a past day are history, not stale.
    assert not is_stale(now - timedelta(days=400), on=date(2020, 1, 1))


def test_history_of_a_pair(ecb_week):
    provider, series = rate_history(base="EUR", quote="USD", start=FRI, end=MON)
    assert provider == "ecb"
    assert series == [(FRI, Decimal("1.0848")), (MON, Decimal("1.0871"))]


def test_rates_status_failing_only_when_the_last_attempt_failed():
    now = timezone.now()
    RateFetchFactory(status="failed", provider="xe", finished_at=now - timedelta(minutes=2))
    RateFetchFactory(status="success", provider="ecb", finished_at=now - timedelta(minutes=1))
    assert rates_status()["failing"] is False
    RateFetchFactory(status="failed", provider="ecb", finished_at=now)
    status = rates_status()
    assert status["failing"] is True
    assert status["stale"] is False
