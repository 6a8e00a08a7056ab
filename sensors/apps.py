from django.apps import AppConfig


class SensorsConfig(AppConfig):
    """Platforms, sensors and readings: ingestion (device keys too), queries and live streams."""

    name = "sensors"
    verbose_name = "Sensors"

    def ready(self) -> None:
        from common.health import health_check_register
        from sensors import schema  # noqa: F401  (register the OpenAPI extension of device keys)
        from sensors.health import consumers_check, ingest_check, sources_check

        health_check_register("sources", lambda results: sources_check())
        health_check_register("ingest", lambda results: ingest_check(redis_result=results["redis"]))
        health_check_register("consumers", lambda results: consumers_check(redis_result=results["redis"]))
