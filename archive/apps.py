from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    """Data portability: every sensor as one document (export_data, import_data) and the schema as SQL DDL
    (export_schema). Above the domain apps, since a sensor's document holds its detections, anomalies and events."""

    name = "archive"
    verbose_name = "Data export and import"
