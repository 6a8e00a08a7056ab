from django.apps import AppConfig


class SensorsConfig(AppConfig):
    """Platforms, sensors and readings: ingestion, queries and live streams."""

    name = "sensors"
    verbose_name = "Sensors"
