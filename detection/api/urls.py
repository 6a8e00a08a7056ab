from django.urls import path

from detection.api import views

# Registers the `sensor_key` path converter (keys may hold '.', ':', '-' and '_').
from sensors.api import urls as _sensor_urls  # noqa: F401

app_name = "detection-api"

urlpatterns = [
    path("sensors/<sensor_key:key>/detections/", views.SensorDetectionListApi.as_view(), name="sensor-detections"),
    path("sensors/<sensor_key:key>/detector/", views.SensorDetectorApi.as_view(), name="sensor-detector"),
    path("sensors/<sensor_key:key>/feedback/", views.SensorFeedbackApi.as_view(), name="sensor-feedback"),
    path("anomalies/", views.AnomalyListApi.as_view(), name="anomaly-list"),
    path("anomalies/<int:anomaly_id>/", views.AnomalyDetailApi.as_view(), name="anomaly-detail"),
    path("anomalies/<int:anomaly_id>/acknowledge/", views.AnomalyAcknowledgeApi.as_view(), name="anomaly-acknowledge"),
    path("anomalies/<int:anomaly_id>/resolve/", views.AnomalyResolveApi.as_view(), name="anomaly-resolve"),
    path("events/", views.SensorEventListApi.as_view(), name="sensor-event-list"),
    path("events/system/", views.SystemEventListApi.as_view(), name="system-event-list"),
    path("baselines/", views.BaselineListApi.as_view(), name="baseline-list"),
    path("baselines/select/", views.BaselinesSelectApi.as_view(), name="baselines-select"),
    path("baselines/<int:baseline_id>/", views.BaselineDetailApi.as_view(), name="baseline-detail"),
    path("detection/jobs/<str:job_id>/", views.DetectionJobApi.as_view(), name="job-progress"),
]
