"""Every change to rates goes through these functions: the schedule, the API, the commands and the admin call them.

Guarantees:
- `rate` always means units of quote per one unit of base; each published rate is stored with its inverse,
  computed with Decimal (never float) and rounded half-even to the column's 18 decimal places.
- One row per (provider, base, quote, as_of): fetching the same day again updates the rows in place.
- A failed fetch writes nothing but its `RateFetch` row: the last good rates stay as they were.
- Demo rates (provider `demo`, made up) exist only while no real rate does: they are loaded only into an install
  without real rates, and the first real rates stored delete them.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status

from common.db import copy_rows
from common.exceptions import ApplicationError
from common.jobs import ProgressCallback, job_start, no_progress
from rates.models import RATE_QUANTUM, Currency, ExchangeRate, Provider, RateFetch
from rates.providers import (
    ProviderError,
    ProviderNotConfiguredError,
    PublishedRate,
    get_provider,
)
from rates.providers.base import new_session
from rates.providers.demo import demo_rates
from rates.providers.ecb import NAME as ECB
from rates.providers.ecb import count_history_days, iter_history_csv, open_history

logger = logging.getLogger(__name__)

BATCH_ROWS = 50_000
UPDATE_RATES_TASK = "rates.update_rates"  # rates.tasks.update_rates, queued by name: tasks import services
UPDATE_RATES_LABEL = "Exchange rates update"


class RatesUnavailableError(ApplicationError):
    """No provider could deliver rates; every attempt is in RateFetch."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="rates_unavailable", status_code=status.HTTP_502_BAD_GATEWAY)


_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN)
_ONE = Decimal(1)
# (provider, base, quote, rate, as_of, fetched_at, is_inverse): the columns written, in COPY order.
Row = tuple[str, str, str, Decimal, date, datetime, bool]
COLUMNS = ("provider", "base", "quote", "rate", "as_of", "fetched_at", "is_inverse")  # SQL column names
_ATTNAME_OF = {field.name: field.attname for field in ExchangeRate._meta.concrete_fields}
_ATTNAMES = tuple(_ATTNAME_OF[name] for name in COLUMNS)  # base_id, quote_id for the ORM


def inverse_rate(rate: Decimal) -> Decimal:
    """1 / rate, exact to the stored precision (computed with 50 significant digits, rounded half-even)."""
    return _CONTEXT.divide(_ONE, rate).quantize(RATE_QUANTUM, context=_CONTEXT)


def _rows_for(
    *, provider: str, rates: Iterable[PublishedRate], fetched_at: datetime, known: set[str]
) -> tuple[list[Row], set[str]]:
    """Both directions of each rate whose currencies are known, and the unknown codes met."""
    rows: list[Row] = []
    unknown: set[str] = set()
    for published in rates:
        base, quote = published.base, published.quote
        if base not in known or quote not in known:
            unknown |= {base, quote} - known
            continue
        if base == quote:
            continue
        rate = published.rate.quantize(RATE_QUANTUM, context=_CONTEXT)
        rows.append((provider, base, quote, rate, published.as_of, fetched_at, False))
        inverse = inverse_rate(published.rate)
        if inverse > 0:  # only a rate above 10**18 could have an inverse that rounds to zero
            rows.append((provider, quote, base, inverse, published.as_of, fetched_at, True))
    return rows, unknown


def _upsert(rows: list[Row]) -> None:
    """Insert or update rows by (provider, base, quote, as_of).

    PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE (COPY's
    speed with the upsert's semantics). Elsewhere (SQLite): bulk_create with update_conflicts.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        ExchangeRate.objects.bulk_create(
            [ExchangeRate(**dict(zip(_ATTNAMES, row, strict=True))) for row in rows],
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["provider", "base", "quote", "as_of"],
            update_fields=["rate", "fetched_at", "is_inverse"],
        )
        return
    table = ExchangeRate._meta.db_table
    columns = ", ".join(COLUMNS)
    # One row per key (the last wins): ON CONFLICT may not touch the same row twice in one statement.
    unique = {(row[0], row[1], row[2], row[4]): row for row in rows}
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS rates_upsert")
        cursor.execute(
            "CREATE TEMPORARY TABLE rates_upsert (provider varchar(8), base varchar(3), quote varchar(3), "
            "rate numeric(30, 18), as_of date, fetched_at timestamptz, is_inverse boolean) ON COMMIT DROP"
        )
        copy_rows(cursor, "rates_upsert", COLUMNS, unique.values())
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM rates_upsert "  # noqa: S608 (fixed identifiers)
            "ON CONFLICT (provider, base, quote, as_of) DO UPDATE "
            "SET rate = EXCLUDED.rate, fetched_at = EXCLUDED.fetched_at, is_inverse = EXCLUDED.is_inverse"
        )
        cursor.execute("DROP TABLE rates_upsert")


@transaction.atomic
def rates_store(*, provider: str, rates: Iterable[PublishedRate], fetched_at: datetime | None = None) -> int:
    """Store published rates and their inverses (upsert); returns the rows written. Unknown currencies are skipped."""
    fetched_at = fetched_at or timezone.now()
    known = set(Currency.objects.values_list("code", flat=True))
    rows, unknown = _rows_for(provider=provider, rates=rates, fetched_at=fetched_at, known=known)
    if unknown:
        logger.warning("rates: %s published unknown currencies, skipped: %s", provider, ", ".join(sorted(unknown)))
    if provider == Provider.DEMO:
        if ExchangeRate.objects.exclude(provider=Provider.DEMO).exists():
            raise ProviderError("demo: real rates are stored; demo rates are only for an install without any")
    elif rows:
        _demo_rates_drop()
    _upsert(rows)
    return len(rows)


def _demo_rates_drop() -> None:
    """Real rates are arriving: the made-up ones go (in the caller's transaction)."""
    deleted, _ = ExchangeRate.objects.filter(provider=Provider.DEMO).delete()
    if deleted:
        logger.info("rates: real rates stored, %s demo rates deleted", deleted)


def rates_demo_load(*, days: int = 30) -> RateFetch | None:
    """Store the demo rates of the last `days` days (provider `demo`, labelled not real everywhere) unless real
    rates are stored, in which case nothing changes and None is returned. Idempotent (upsert); logged as a
    `RateFetch` of provider `demo`, which the health check never counts as a real update."""
    if ExchangeRate.objects.exclude(provider=Provider.DEMO).exists():
        return None
    today = timezone.now().date()
    published = [rate for back in range(days) for rate in demo_rates(today - timedelta(days=back))]
    fetch = RateFetch.objects.create(provider=Provider.DEMO, started_at=timezone.now())
    try:
        fetch.rows = rates_store(provider=Provider.DEMO, rates=published)
    except ProviderError as exc:  # real rates arrived meanwhile
        fetch.status, fetch.error = RateFetch.Status.SKIPPED, str(exc)
        fetch.finished_at = timezone.now()
        fetch.save(update_fields=["status", "error", "finished_at"])
        return None
    fetch.status, fetch.as_of, fetch.finished_at = RateFetch.Status.SUCCESS, today, timezone.now()
    fetch.save(update_fields=["status", "rows", "as_of", "finished_at"])
    return fetch


def rates_fetch(*, provider: str, on: date | None = None, session: requests.Session | None = None) -> RateFetch:
    """Fetch one provider's rates (latest, or the last day on or before `on`) and store them.

    The `RateFetch` row is written before and after, outside the storing transaction, so a failure stays
    recorded. Raises ProviderError (ProviderNotConfiguredError for a provider without credentials).
    """
    source = get_provider(provider)
    fetch = RateFetch.objects.create(provider=provider, started_at=timezone.now(), requested_date=on)
    try:
        published = source.fetch(session=session or new_session(), on=on)
        fetch.rows = rates_store(provider=provider, rates=published)
    except ProviderNotConfiguredError as exc:
        fetch.status, fetch.error = RateFetch.Status.SKIPPED, str(exc)
        raise
    except ProviderError as exc:
        fetch.status, fetch.error = RateFetch.Status.FAILED, str(exc)
        logger.warning("rates: fetch from %s failed: %s", provider, exc)
        raise
    except Exception as exc:  # recorded, then Celery or the caller sees it: the log never stays "running"
        fetch.status, fetch.error = RateFetch.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        raise
    else:
        fetch.status = RateFetch.Status.SUCCESS
        fetch.as_of = max(rate.as_of for rate in published)
    finally:
        fetch.finished_at = timezone.now()
        fetch.save(update_fields=["status", "error", "rows", "as_of", "finished_at"])
    return fetch


def rates_update(
    *,
    provider: str | None = None,
    on: date | None = None,
    progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
) -> RateFetch:
    """Fetch from the configured providers in order (or only `provider`) until one succeeds.

    Providers without credentials are skipped; one that fails, times out or answers garbage hands over to the
    next. Raises RatesUnavailableError when none succeeds (nothing is changed then).
    """
    progress = progress or no_progress
    names = [provider] if provider else list(settings.RATES_PROVIDERS)
    if not names:
        raise RatesUnavailableError("No rate provider is configured (RATES_PROVIDERS).")
    errors = []
    for index, name in enumerate(names):
        progress(index, len(names), f"Fetching from {name}")
        try:
            fetch = rates_fetch(provider=name, on=on, session=session)
        except ProviderError as exc:
            errors.append(str(exc))
            continue
        progress(len(names), len(names), f"{fetch.rows} rates from {name} as of {fetch.as_of}")
        return fetch
    raise RatesUnavailableError("No provider delivered rates: " + "; ".join(errors))


def rates_update_enqueue(*, provider: str | None = None, on: date | None = None, user: Any = None) -> str:
    """Start a background update as a job (common.jobs), queued once the current transaction commits; returns the
    job id (the Celery task id). Not locked: updates upsert, so two at once store the same rows."""
    what = f" from {provider}" if provider else ""
    return job_start(
        kind=UPDATE_RATES_TASK,
        task=UPDATE_RATES_TASK,
        kwargs={"provider": provider, "on": on.isoformat() if on else None},
        user=user,
        label=f"{UPDATE_RATES_LABEL}{what}" + (f" for {on}" if on else ""),
    )


@dataclass
class ImportResult:
    days: int = 0
    rates: int = 0
    rows: int = 0
    first: date | None = None
    last: date | None = None
    unknown: set[str] = field(default_factory=set)


@transaction.atomic
def rates_import_history(*, path: Path, progress: ProgressCallback | None = None) -> ImportResult:
    """Import the ECB historical file (CSV, or the ZIP holding it) as provider `ecb`; idempotent (upsert).

    All or nothing: a malformed line aborts the import (ApplicationError naming the line) and stores nothing.
    """
    progress = progress or no_progress
    try:
        total_days = count_history_days(path)
    except (OSError, ProviderError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"Cannot read {path}: {exc}") from exc
    fetch = RateFetch.objects.create(provider=ECB, started_at=timezone.now())
    known = set(Currency.objects.values_list("code", flat=True))
    fetched_at = timezone.now()
    result = ImportResult()
    batch: list[PublishedRate] = []
    current_day = None

    def flush() -> None:
        rows, unknown = _rows_for(provider=ECB, rates=batch, fetched_at=fetched_at, known=known)
        _upsert(rows)
        result.rows += len(rows)
        result.unknown |= unknown
        batch.clear()
        progress(result.days, total_days, f"{result.rows} rows")

    _demo_rates_drop()
    try:
        with open_history(path) as stream:
            for published in iter_history_csv(stream):
                if published.as_of != current_day:
                    current_day = published.as_of
                    result.days += 1
                    result.first = min(result.first or current_day, current_day)
                    result.last = max(result.last or current_day, current_day)
                    if len(batch) * 2 >= BATCH_ROWS:
                        flush()
                result.rates += 1
                batch.append(published)
            flush()
    except (ProviderError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"{path.name}: {exc}") from exc
    fetch.status, fetch.rows, fetch.as_of, fetch.finished_at = (
        RateFetch.Status.SUCCESS,
        result.rows,
        result.last,
        timezone.now(),
    )
    fetch.save()
    return result
