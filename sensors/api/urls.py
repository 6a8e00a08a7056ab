from django.urls import path, register_converter
from rest_framework.routers import SimpleRouter

from sensors.api import views
from sensors.models import SENSOR_KEY

app_name = "sensors-api"


class SensorKeyConverter:
    """Sensor keys may hold '.', ':', '-' and '_' (so no format-suffix routes here)."""

    regex = SENSOR_KEY

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SensorKeyConverter, "sensor_key")

# SimpleRouter adds no format-suffix routes, which would read a key like "wind.json" as a format.
router = SimpleRouter()
router.register("platforms", views.PlatformViewSet, basename="platform")
router.register("installations", views.InstallationViewSet, basename="installation")
router.register("sensors", views.SensorViewSet, basename="sensor")

urlpatterns = [
    path("readings/", views.ReadingBatchApi.as_view(), name="reading-batch"),
    path("readings/latest/", views.ReadingsLatestApi.as_view(), name="readings-latest"),
    path("sensors/<sensor_key:key>/readings/", views.SensorReadingsApi.as_view(), name="sensor-readings"),
    path("sensors/<sensor_key:key>/latest/", views.SensorLatestApi.as_view(), name="sensor-latest"),
    *router.urls,
]
