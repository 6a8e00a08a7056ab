from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Code that more than one app needs: the error type, the API exception handler, health checks."""

    name = "common"
    verbose_name = "Common"
