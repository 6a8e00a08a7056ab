from django.urls import path, re_path

from dashboard.views import anomalies, imports, jobs, sensor
from dashboard.views.data import data_download, data_page
from dashboard.views.events import events_page
from dashboard.views.overview import overview_page
from sensors.models import SENSOR_KEY

app_name = "dashboard"

# Sensor keys may hold '.', ':', '-' and '_' (`sensors.models.SENSOR_KEY`), hence a pattern rather than <slug:>.
SENSOR = rf"^sensors/(?P<key>{SENSOR_KEY})/"

urlpatterns = [
    path("", overview_page, name="overview"),
    path("events/", events_page, name="events"),
    re_path(rf"{SENSOR}$", sensor.sensor_page, name="sensor"),
    re_path(rf"{SENSOR}settings/$", sensor.sensor_settings, name="sensor-settings"),
    re_path(rf"{SENSOR}feedback/$", sensor.sensor_feedback, name="sensor-feedback"),
    path("anomalies/", anomalies.anomalies_page, name="anomalies"),
    path("anomalies/<int:anomaly_id>/acknowledge/", anomalies.anomaly_acknowledge_action, name="anomaly-acknowledge"),
    path("anomalies/<int:anomaly_id>/resolve/", anomalies.anomaly_resolve_action, name="anomaly-resolve"),
    path("data/", data_page, name="data"),
    path("data/download/<str:job_id>/", data_download, name="data-download"),
    path("jobs/", jobs.jobs_page, name="jobs"),
    path("jobs/status/", jobs.jobs_status, name="jobs-status"),
    path("import/", imports.import_page, name="import"),
]
