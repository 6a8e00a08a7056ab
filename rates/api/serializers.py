from decimal import Decimal, InvalidOperation

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.inputs import DayField
from rates.models import RATE_DECIMAL_PLACES, ExchangeRate, Provider, rate_as_text

MAX_AMOUNT = Decimal(10) ** 18
# What the schema states of an amount: every text it matches is taken (AmountField also reads exponents and a sign).
AMOUNT_PATTERN = r"^-?[0-9]{1,18}(\.[0-9]{1,18})?$"
DEMO_HELP = (
    "True when a rate answered comes from the `demo` provider: made up for an install that reached no provider, "
    "not real rates."
)
# Updates fetch from real providers; demo rates are loaded only by `fetch_rates --demo-if-offline`.
UPDATE_PROVIDERS = [(value, label) for value, label in Provider.choices if value != Provider.DEMO]


@extend_schema_field({"type": "string", "pattern": "^[A-Z]{3}$"})
class CurrencyCodeOutField(serializers.CharField):
    """Output only: a currency code (ISO 4217, upper case)."""


@extend_schema_field({"type": "string", "pattern": "^[A-Za-z]{3}$"})
class CurrencyCodeField(serializers.CharField):
    """Input: three letters, upper-cased (`kes` → `KES`); whether it is known is checked by the selectors."""

    def __init__(self, **kwargs):
        super().__init__(min_length=3, max_length=3, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data).upper()
        if not value.isalpha() or not value.isascii():
            raise serializers.ValidationError("A currency code is three letters (ISO 4217).")
        return value


@extend_schema_field({"type": "string", "pattern": AMOUNT_PATTERN})
class AmountField(serializers.CharField):
    """A decimal number as text (`"1234.5"`), read exactly: at most 18 places, less than 10**18 in size."""

    def to_internal_value(self, data):
        text = super().to_internal_value(data).strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise serializers.ValidationError("A decimal number is required, e.g. 1234.50.") from None
        if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
            raise serializers.ValidationError("The amount must be a finite number below 10**18.")
        if amount.as_tuple().exponent < -RATE_DECIMAL_PLACES:
            raise serializers.ValidationError(f"At most {RATE_DECIMAL_PLACES} decimal places.")
        return amount


class RateTextField(serializers.CharField):
    """Output only: a rate as a decimal string (up to 18 places, no exponent, no trailing zeros)."""

    def to_representation(self, value: Decimal) -> str:  # type: ignore[override]  # the stubs type CharField's value as str
        return rate_as_text(value)


class RateListInputSerializer(serializers.Serializer):
    base = CurrencyCodeField(required=False, help_text="Only rates with this base currency.")
    quote = CurrencyCodeField(required=False, help_text="Only rates with this quote currency.")
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    date = DayField(required=False, help_text="The last rates published on or before this day (default: the latest).")


class RateSerializer(serializers.ModelSerializer):
    base = CurrencyCodeOutField(source="base_id")
    quote = CurrencyCodeOutField(source="quote_id")
    rate = RateTextField(help_text="Units of quote per one unit of base, as a decimal string.")

    class Meta:
        model = ExchangeRate
        fields = ["provider", "base", "quote", "rate", "as_of", "fetched_at", "is_inverse"]
        read_only_fields = fields


class RateListOutputSerializer(serializers.Serializer):
    """A page of rates (PageNumberPagination's count and links) with the day asked for and its staleness."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RateSerializer(many=True)
    date = serializers.DateField(allow_null=True, help_text="The day asked for (null: the latest).")
    stale = serializers.BooleanField(help_text="The newest rate answered was fetched more than the configured age ago.")
    demo = serializers.BooleanField(help_text=DEMO_HELP)


class RateConvertInputSerializer(serializers.Serializer):
    """`from` is a Python keyword, so the fields are declared here rather than as attributes."""

    def get_fields(self):
        return {
            "from": CurrencyCodeField(help_text="The currency of the amount."),
            "to": CurrencyCodeField(help_text="The currency to convert to."),
            "amount": AmountField(required=False, default=Decimal(1), help_text="Default 1."),
            "date": DayField(required=False, help_text="Use the rates as of this day."),
        }


class RateConvertOutputSerializer(serializers.Serializer):
    """Of `{"conversion": Conversion, "stale": bool}`; `from` is a Python keyword, so the fields are declared here."""

    def get_fields(self):
        return {
            "from": CurrencyCodeOutField(source="conversion.rate.base"),
            "to": CurrencyCodeOutField(source="conversion.rate.quote"),
            "amount": serializers.CharField(source="conversion.amount", help_text="The amount asked for, as given."),
            "result": serializers.CharField(
                source="conversion.result", help_text="Rounded half-up to the target currency's minor units."
            ),
            "rate": RateTextField(source="conversion.rate.rate", help_text="Units of `to` per one `from`."),
            "as_of": serializers.DateField(source="conversion.rate.as_of"),
            "provider": serializers.CharField(
                source="conversion.rate.provider", help_text="Empty when converting a currency to itself."
            ),
            "via": CurrencyCodeOutField(
                source="conversion.rate.via", allow_null=True, help_text="The pivot currency of a cross rate."
            ),
            "stale": serializers.BooleanField(),
            "demo": serializers.BooleanField(help_text=DEMO_HELP),
        }


class RatesUpdateInputSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(
        choices=UPDATE_PROVIDERS, required=False, help_text="Only this provider (default: all, in order)."
    )
    date = DayField(required=False, help_text="Fetch the rates of this day (default: the latest).")


class RatesUpdateOutputSerializer(serializers.Serializer):
    job_id = serializers.CharField(help_text="The Celery task id.")
    progress_url = serializers.URLField(help_text="Poll it (viewer role) for state and percent.")


class LegacyRateListInputSerializer(serializers.Serializer):
    currency = CurrencyCodeField(required=False, help_text="One quote currency (default: all of RATES_QUOTES).")


class LegacyRateSerializer(serializers.Serializer):
    """Of a ResolvedRate from RATES_BASE."""

    currency = CurrencyCodeOutField(source="quote")
    rate = RateTextField(help_text="Units of `currency` per one unit of `base`.")
    as_of = serializers.DateField()
    provider = serializers.CharField()


class LegacyRateListOutputSerializer(serializers.Serializer):
    base = CurrencyCodeOutField()
    stale = serializers.BooleanField()
    demo = serializers.BooleanField(help_text=DEMO_HELP)
    rates = LegacyRateSerializer(many=True)
