from django.apps import AppConfig


class SensorsConfig(AppConfig):
    """Platforms, sensors and readings: ingestion (device keys too), queries and live streams."""

    name = "sensors"
    verbose_name = "Sensors"

    def ready(self) -> None:
        from sensors import schema  # noqa: F401  (register the OpenAPI extension of device keys)
