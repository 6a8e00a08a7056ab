from django.apps import AppConfig


class DetectionConfig(AppConfig):
    """Matrix-profile leak and anomaly detection, baselines, anomalies and events."""

    name = "detection"
    verbose_name = "Detection"
