from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Code that more than one app needs: the error type, the API exception handler, health checks."""

    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from common.db import connections_close_after_asgi_request

        request_finished.connect(connections_close_after_asgi_request, dispatch_uid="common.asgi_connections")
