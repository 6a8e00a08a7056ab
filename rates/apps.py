from django.apps import AppConfig


class RatesConfig(AppConfig):
    """Currencies and exchange rates from providers, conversion and schedules."""

    name = "rates"
    verbose_name = "Exchange rates"

    def ready(self) -> None:
        from common.health import health_check_register
        from rates.health import rates_check

        health_check_register("rates", lambda results: rates_check())
