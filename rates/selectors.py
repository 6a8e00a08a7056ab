"""Reading rates: latest or as of a day, conversion through cross rates, history of a pair, freshness.

"As of a day" means the last rates published on or before that day, so weekends and holidays fall back to
the last working day. All arithmetic is Decimal; nothing passes through float.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from rest_framework import status

from common.exceptions import ApplicationError
from rates.models import Currency, ExchangeRate, Provider, RateFetch
from rates.providers import provider_order

# Where ISO 4217 gives no minor units (gold, SDR), results keep this many decimal places.
DEFAULT_PLACES = 8


@dataclass(frozen=True)
class ResolvedRate:
    """1 `base` = `rate` `quote` as of `as_of`, from `provider`; `via` names the pivot of a cross rate."""

    base: str
    quote: str
    rate: Decimal
    as_of: date
    provider: str
    fetched_at: datetime | None
    via: str | None = None


@dataclass(frozen=True)
class Conversion:
    amount: Decimal
    result: Decimal
    rate: ResolvedRate


def is_stale(fetched_at: datetime | None, *, on: date | None = None) -> bool:
    """True when rates answered for today (no `on`, or `on` today or later) were fetched too long ago. Nothing
    fetched (None) is not stale: it is "never fetched" (`rates_status`)."""
    if on is not None and on < timezone.now().date():
        return False
    if fetched_at is None:
        return False
    return timezone.now() - fetched_at > timedelta(hours=settings.RATES_STALE_AFTER_HOURS)


def currency_get_many(**codes: str) -> dict[str, Currency]:
    """The currencies named, by code; given as `field=code` so an ApplicationError (400) names each field whose
    code is unknown (`{"to": ["Unknown currency 'XYZ': ..."]}`)."""
    found = Currency.objects.in_bulk(list(codes.values()))
    unknown = {name: code for name, code in codes.items() if code not in found}
    if unknown:
        raise ApplicationError(
            f"Unknown currency: {', '.join(sorted(set(unknown.values())))}.",
            code="unknown_currency",
            fields={
                name: [f"Unknown currency {code!r}: not an ISO 4217 code known here."] for name, code in unknown.items()
            },
        )
    return found


def rate_list(
    *, base: str | None = None, quote: str | None = None, provider: str | None = None, on: date | None = None
) -> QuerySet[ExchangeRate]:
    """For each provider, the rows of the last day (on or before `on`) that has rows matching the filters.

    One query per provider finds its day (through the (provider, -as_of) index), then one query reads the rows.
    """
    rows = ExchangeRate.objects.all()
    if base:
        rows = rows.filter(base=base)
    if quote:
        rows = rows.filter(quote=quote)
    if on:
        rows = rows.filter(as_of__lte=on)
    days = Q(pk__in=[])
    for name in [provider] if provider else provider_order():
        day = rows.filter(provider=name).order_by("-as_of").values_list("as_of", flat=True).first()
        if day:
            days |= Q(provider=name, as_of=day)
    return rows.filter(days).order_by("base", "quote", "provider")


def rate_resolve(*, base: str, quote: str, on: date | None = None) -> ResolvedRate:
    """The rate 1 base = ? quote, as of `on` (latest when None).

    Per provider: the published rate of the pair in either direction (inverting it when needed), or a cross
    rate through a currency both are published against on the same day (rate = pivot→quote / pivot→base).
    Published rates are the source, so inverses and crosses are computed with 40 significant digits and never
    rounded twice. Among providers the most recent day wins; on a tie, the provider first in RATES_PROVIDERS,
    and the direct rate over a cross one. ApplicationError 404 when no rate exists.
    """
    if base == quote:
        return ResolvedRate(base, quote, Decimal(1), on or timezone.now().date(), "", None)
    candidates: list[tuple[date, int, int, ResolvedRate]] = []
    for rank, name in enumerate(provider_order()):
        published = ExchangeRate.objects.filter(provider=name, is_inverse=False)
        if on:
            published = published.filter(as_of__lte=on)
        direct = (
            published.filter(Q(base=base, quote=quote) | Q(base=quote, quote=base))
            .order_by("-as_of")
            .only("base", "rate", "as_of", "fetched_at")
            .first()
        )
        if direct:
            with localcontext(prec=40):
                rate = direct.rate if direct.base_id == base else Decimal(1) / direct.rate
            resolved = ResolvedRate(base, quote, rate, direct.as_of, name, direct.fetched_at)
            candidates.append((direct.as_of, -rank, 1, resolved))
        leg = published.filter(base=OuterRef("base"), as_of=OuterRef("as_of"), quote=base)
        cross = (
            published.filter(quote=quote)
            .exclude(base=base)
            .annotate(
                base_rate=Subquery(leg.values("rate")[:1]), base_fetched_at=Subquery(leg.values("fetched_at")[:1])
            )
            .filter(base_rate__isnull=False)
            .order_by("-as_of")
            .only("base", "rate", "as_of", "fetched_at")
            .first()
        )
        if cross and (not direct or cross.as_of > direct.as_of):
            with localcontext(prec=40):
                rate = cross.rate / cross.base_rate
            fetched_at = min(cross.fetched_at, cross.base_fetched_at)
            resolved = ResolvedRate(base, quote, rate, cross.as_of, name, fetched_at, via=cross.base_id)
            candidates.append((cross.as_of, -rank, 0, resolved))
    if not candidates:
        when = f" on or before {on}" if on else ""
        raise ApplicationError(
            f"No rate from {base} to {quote}{when}.", code="no_rate", status_code=status.HTTP_404_NOT_FOUND
        )
    return max(candidates, key=lambda candidate: candidate[:3])[3]


def amount_convert(*, amount: Decimal, base: str, quote: str, on: date | None = None) -> Conversion:
    """`amount` of base in quote: amount × the unrounded rate, rounded half-up (away from zero on .5) to the
    quote currency's minor units (DEFAULT_PLACES where ISO 4217 defines none). Unknown codes are named as the
    API's `from` and `to`."""
    currencies = currency_get_many(**{"from": base, "to": quote})
    resolved = rate_resolve(base=base, quote=quote, on=on)
    places = currencies[quote].minor_units
    quantum = Decimal(1).scaleb(-(DEFAULT_PLACES if places is None else places))
    with localcontext(prec=60):
        result = (amount * resolved.rate).quantize(quantum, rounding=ROUND_HALF_UP)
    return Conversion(amount=amount, result=result, rate=resolved)


def rates_from_base(*, quote: str | None = None) -> tuple[list[ResolvedRate], datetime | None]:
    """The old service's view: the latest rate from RATES_BASE to `quote`, or to each of RATES_QUOTES (those
    with no rate left out), and when the newest of them was fetched. An unknown currency, or no rate for the one
    `quote` asked for, is an ApplicationError."""
    base = settings.RATES_BASE
    currency_get_many(RATES_BASE=base, **({"currency": quote} if quote else {}))
    if quote:
        resolved = [rate_resolve(base=base, quote=quote)]
    else:
        resolved = []
        for each in settings.RATES_QUOTES:
            try:
                resolved.append(rate_resolve(base=base, quote=each))
            except ApplicationError:
                continue
    newest = max((r.fetched_at for r in resolved if r.fetched_at), default=None)
    return resolved, newest


def rate_history(*, base: str, quote: str, start: date, end: date) -> tuple[str | None, list[tuple[date, Decimal]]]:
    """The stored rates of one pair between two days, from the first provider (in order) that has any."""
    rows = ExchangeRate.objects.filter(base=base, quote=quote, as_of__range=(start, end))
    for name in provider_order():
        series = list(rows.filter(provider=name).order_by("as_of").values_list("as_of", "rate"))
        if series:
            return name, series
    return None, []


def fetch_list() -> QuerySet[RateFetch]:
    return RateFetch.objects.order_by("-started_at")


def rates_are_demo(providers: list[str]) -> bool:
    """Whether any of the providers of an answer is the demo one (its rates are made up)."""
    return Provider.DEMO in providers


def rates_status() -> dict[str, Any]:
    """Freshness of the rates for the health check and the page: last real success and failure (demo loads never
    count), `never_fetched` until a real update succeeded (a fresh install: not `stale`), `demo` while demo rates
    are stored."""
    real = RateFetch.objects.exclude(provider=Provider.DEMO)
    last_success = real.filter(status=RateFetch.Status.SUCCESS).order_by("-finished_at").first()
    last_failure = real.filter(status=RateFetch.Status.FAILED).order_by("-finished_at").first()
    newest = last_success.finished_at if last_success else None
    failed_at = last_failure.finished_at if last_failure else None
    failing = failed_at is not None and (newest is None or failed_at > newest)
    return {
        "last_success": last_success,
        "last_failure": last_failure,
        "failing": failing,
        "stale": is_stale(newest),
        "never_fetched": last_success is None,
        "demo": ExchangeRate.objects.filter(provider=Provider.DEMO).exists(),
    }
