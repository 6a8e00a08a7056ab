from django.apps import AppConfig


class RatesConfig(AppConfig):
    """Currencies and exchange rates from providers, conversion and schedules."""

    name = "rates"
    verbose_name = "Exchange rates"
