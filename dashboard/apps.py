from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The operator's pages: overview, sensor pages, anomalies, events and jobs. The top layer: it reads every app's
    selectors and calls their services, and no app imports it."""

    name = "dashboard"
    verbose_name = "Dashboard"
