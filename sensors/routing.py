"""WebSocket routes of the sensors app, combined with the other apps' in `config/asgi.py`."""

from django.urls import path

from sensors.consumers import SensorReadingsConsumer

# `str` takes any key without a '/', dots and colons included; unknown keys are closed with 4404.
# Channels routes ASGI apps with Django's `path`; its stubs accept views only (hence the ignore).
websocket_urlpatterns = [
    path("ws/sensors/<str:key>/readings/", SensorReadingsConsumer.as_asgi()),  # type: ignore[arg-type]
]
