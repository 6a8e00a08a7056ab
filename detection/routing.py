"""WebSocket routes of the detection app, combined with the other apps' in `config/asgi.py`."""

from django.urls import path

from detection.consumers import SensorDetectionsConsumer, SensorEventsConsumer, SystemEventsConsumer

# `str` takes any key without a '/', as the readings route does; unknown keys are closed with 4404.
# Channels routes ASGI apps with Django's `path`; its stubs accept views only (hence the ignores).
websocket_urlpatterns = [
    path("ws/sensors/<str:key>/detections/", SensorDetectionsConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/sensors/<str:key>/events/", SensorEventsConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/events/system/", SystemEventsConsumer.as_asgi()),  # type: ignore[arg-type]
]
