"""WebSocket routes of the dashboard's summary sockets, combined with the other apps' in `config/asgi.py`."""

from django.urls import path

from dashboard.consumers import EventsConsumer, OverviewConsumer

# Channels routes ASGI apps with Django's `path`; its stubs accept views only (hence the ignores).
websocket_urlpatterns = [
    path("ws/dashboard/overview/", OverviewConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/dashboard/events/", EventsConsumer.as_asgi()),  # type: ignore[arg-type]
]
