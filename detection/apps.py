from django.apps import AppConfig


class DetectionConfig(AppConfig):
    """Matrix-profile leak and anomaly detection, baselines, anomalies and events."""

    name = "detection"
    verbose_name = "Detection"

    def ready(self) -> None:
        from common.health import health_check_register
        from detection.health import detection_check

        health_check_register("detection", lambda results: detection_check())
