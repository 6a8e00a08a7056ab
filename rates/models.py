"""Currencies, exchange rates and the log of every fetch from a provider.

`ExchangeRate.rate` always means units of `quote` per one unit of `base` (1 base = rate quote), whichever way
the provider published it.
"""

from decimal import Decimal

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

# 30 digits, 18 after the point: the largest published rates (IRR, VND, LBP per unit of a strong currency)
# have at most 7 integer digits, and the inverse of such a rate keeps 13+ significant digits.
RATE_MAX_DIGITS = 30
RATE_DECIMAL_PLACES = 18
RATE_QUANTUM = Decimal(1).scaleb(-RATE_DECIMAL_PLACES)


def rate_as_text(rate: Decimal) -> str:
    """A rate as a plain decimal string, at most 18 places, no trailing zeros, never in exponent form."""
    text = f"{rate.quantize(RATE_QUANTUM):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


currency_code_validator = RegexValidator(r"^[A-Z]{3}$", "A currency code is three capital letters (ISO 4217).")


class Provider(models.TextChoices):
    XE = "xe", "XE Currency Data"
    ECB = "ecb", "European Central Bank"
    OXR = "oxr", "Open Exchange Rates"
    # Made-up rates for a machine that reaches no provider (rates/providers/demo.py); labelled not real everywhere.
    DEMO = "demo", "Demo data (not real rates)"


class Currency(models.Model):
    """An ISO 4217 currency (plus the few non-ISO codes providers publish, e.g. BTC, CNH).

    `minor_units` is the number of decimal places amounts are rounded to; null where ISO 4217 defines none
    (gold, silver, SDR).
    """

    code = models.CharField(max_length=3, primary_key=True, validators=[currency_code_validator])
    name = models.CharField(max_length=100)
    minor_units = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "currencies"
        constraints = [
            models.CheckConstraint(condition=Q(minor_units__lte=8), name="rates_currency_minor_units_lte_8"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class ExchangeRate(models.Model):
    """One rate of one provider for one day: 1 `base` = `rate` `quote`.

    One row per (provider, base, quote, as_of); a second fetch the same day updates it in place. Every
    published rate is stored with its inverse (`is_inverse=True`, computed with Decimal at full precision).
    """

    provider = models.CharField(max_length=8, choices=Provider.choices)
    # No index of their own: lookups go through the unique (provider, base, quote, as_of) index, and every extra
    # index slows the history import.
    base = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+", db_column="base", db_index=False)
    quote = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+", db_column="quote", db_index=False)
    rate = models.DecimalField(
        max_digits=RATE_MAX_DIGITS,
        decimal_places=RATE_DECIMAL_PLACES,
        help_text="Units of the quote currency per one unit of the base currency.",
    )
    as_of = models.DateField(help_text="The day the provider published this rate for.")
    fetched_at = models.DateTimeField(help_text="When Sensorhub last fetched (or imported) it.")
    is_inverse = models.BooleanField(
        default=False, help_text="Computed as 1 / the published rate of the opposite direction."
    )

    class Meta:
        ordering = ["-as_of", "provider", "base", "quote"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "base", "quote", "as_of"], name="rates_rate_one_per_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="rates_rate_positive"),
            models.CheckConstraint(condition=~Q(base=F("quote")), name="rates_rate_two_currencies"),
        ]
        indexes = [models.Index(fields=["provider", "-as_of"], name="rates_rate_provider_day")]

    def __str__(self) -> str:
        return f"1 {self.base_id} = {self.rate_text} {self.quote_id} ({self.provider}, {self.as_of})"

    @property
    def rate_text(self) -> str:
        return rate_as_text(self.rate)


class RateFetch(models.Model):
    """The log of one attempt to fetch rates from one provider (scheduled, API, command or import)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (not configured)"

    provider = models.CharField(max_length=8, choices=Provider.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    rows = models.PositiveIntegerField(default=0, help_text="Rate rows stored (both directions).")
    as_of = models.DateField(null=True, blank=True, help_text="The day of the rates fetched.")
    requested_date = models.DateField(null=True, blank=True, help_text="The day asked for; empty for the latest.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "rate fetches"
        indexes = [models.Index(fields=["status", "-started_at"], name="rates_fetch_status_started")]

    def __str__(self) -> str:
        return f"{self.provider} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"
