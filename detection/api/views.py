"""The detection API: thin views over the detection selectors and services (docs/api.md, "Detection").

Viewers read everything; operators act on anomalies, change a sensor's detector, switch feedback mode and
queue baseline selection. Device keys read nothing here (as everywhere in the API but readings).

The services that reach the detector (settings, feedback) are imported inside the views that use them: they
import stumpy, which takes seconds, and the web process loads this module at start-up (the `web-no-stumpy`
contract in pyproject.toml lists these two imports as its only exceptions).
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import CanOperate, CanRead, CanReadOrOperate
from common.jobs import JobProgressSerializer, job_progress
from common.pagination import PageNumberPagination, TimestampCursorPagination, paginated_response
from detection.api.serializers import (
    AnomalyAcknowledgeSerializer,
    AnomalyResolveSerializer,
    AnomalySerializer,
    BaselineDetailSerializer,
    BaselineSerializer,
    BaselinesSelectSerializer,
    DetectionSerializer,
    DetectorSettingsSerializer,
    FeedbackSerializer,
    JobQueuedSerializer,
    SensorEventSerializer,
    SystemEventSerializer,
)
from detection.filters import AnomalyFilter, BaselineFilter, DetectionFilter, SensorEventFilter, SystemEventFilter
from detection.models import Anomaly
from detection.selectors import (
    anomaly_get,
    anomaly_list,
    baseline_get,
    baseline_list,
    detection_list,
    detector_settings_get,
    detector_state_get,
    sensor_event_list,
    system_event_list,
)
from detection.services.anomalies import anomaly_acknowledge, anomaly_resolve
from detection.services.enqueue import JOB_TASKS, baselines_select_enqueue
from sensors.api.views import SENSOR_KEY_PARAMETER, sensor_or_404
from sensors.models import Sensor

# --- detections ---------------------------------------------------------------------------------------------------


class SensorDetectionListApi(APIView):
    """One sensor's detections (level, status), oldest first, in cursor pages; 404 for an unknown sensor."""

    permission_classes = [CanRead]
    filterset_class = DetectionFilter  # applied by the selector; named here for the schema
    pagination_class = TimestampCursorPagination

    @extend_schema(parameters=[SENSOR_KEY_PARAMETER], responses=DetectionSerializer(many=True))
    def get(self, request: Request, key: str) -> Response:
        sensor = sensor_or_404(key)
        rows = detection_list(sensor=sensor, filters=request.query_params)
        return paginated_response(request=request, view=self, queryset=rows, serializer_class=DetectionSerializer)


# --- anomalies ----------------------------------------------------------------------------------------------------


def anomaly_or_404(anomaly_id: int) -> Anomaly:
    anomaly = anomaly_get(anomaly_id=anomaly_id)
    if anomaly is None:
        raise exceptions.NotFound(f"No anomaly {anomaly_id}.")
    return anomaly


def _operator(request: Request) -> User:
    """The operator behind a request that `CanOperate` let through (never anonymous)."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


class AnomalyListApi(APIView):
    """Anomalies, newest first."""

    permission_classes = [CanRead]
    filterset_class = AnomalyFilter  # applied by the selector; named here for the schema
    pagination_class = PageNumberPagination

    @extend_schema(responses=AnomalySerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = anomaly_list(filters=request.query_params)
        return paginated_response(request=request, view=self, queryset=rows, serializer_class=AnomalySerializer)


class AnomalyDetailApi(APIView):
    permission_classes = [CanRead]

    @extend_schema(responses=AnomalySerializer)
    def get(self, request: Request, anomaly_id: int) -> Response:
        return Response(AnomalySerializer(anomaly_or_404(anomaly_id)).data)


REFUSED = OpenApiResponse(description="The anomaly's status does not allow it (`invalid_transition`).")


class AnomalyAcknowledgeApi(APIView):
    """Operators: an open anomaly has been seen (409 if it is not open)."""

    permission_classes = [CanOperate]

    @extend_schema(
        request=AnomalyAcknowledgeSerializer,
        responses={200: AnomalySerializer, 409: REFUSED},
    )
    def post(self, request: Request, anomaly_id: int) -> Response:
        params = AnomalyAcknowledgeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        anomaly = anomaly_acknowledge(
            anomaly=anomaly_or_404(anomaly_id), user=_operator(request), **params.validated_data
        )
        return Response(AnomalySerializer(anomaly).data)


class AnomalyResolveApi(APIView):
    """Operators: close an open or acknowledged anomaly as resolved or external cause (409 once final)."""

    permission_classes = [CanOperate]

    @extend_schema(
        request=AnomalyResolveSerializer,
        responses={200: AnomalySerializer, 409: REFUSED},
    )
    def post(self, request: Request, anomaly_id: int) -> Response:
        params = AnomalyResolveSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        anomaly = anomaly_resolve(anomaly=anomaly_or_404(anomaly_id), user=_operator(request), **params.validated_data)
        return Response(AnomalySerializer(anomaly).data)


# --- events -------------------------------------------------------------------------------------------------------


class SensorEventListApi(APIView):
    """Sensor events (state changes: critical, ok, not_available), newest first."""

    permission_classes = [CanRead]
    filterset_class = SensorEventFilter  # applied by the selector; named here for the schema
    pagination_class = PageNumberPagination

    @extend_schema(responses=SensorEventSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = sensor_event_list(filters=request.query_params)
        return paginated_response(request=request, view=self, queryset=rows, serializer_class=SensorEventSerializer)


class SystemEventListApi(APIView):
    """System events reported by jobs (alert_critical, alert_success, info), newest first."""

    permission_classes = [CanRead]
    filterset_class = SystemEventFilter  # applied by the selector; named here for the schema
    pagination_class = PageNumberPagination

    @extend_schema(responses=SystemEventSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = system_event_list(filters=request.query_params)
        return paginated_response(request=request, view=self, queryset=rows, serializer_class=SystemEventSerializer)


# --- baselines ----------------------------------------------------------------------------------------------------


class BaselineListApi(APIView):
    """Baselines by name, with their statistics; the values are in the detail only."""

    permission_classes = [CanRead]
    filterset_class = BaselineFilter  # applied by the selector; named here for the schema
    pagination_class = PageNumberPagination

    @extend_schema(responses=BaselineSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = baseline_list(filters=request.query_params)
        return paginated_response(request=request, view=self, queryset=rows, serializer_class=BaselineSerializer)


class BaselineDetailApi(APIView):
    """One baseline with its statistics and its values (a list of floats, oldest first)."""

    permission_classes = [CanRead]

    @extend_schema(responses=BaselineDetailSerializer)
    def get(self, request: Request, baseline_id: int) -> Response:
        baseline = baseline_get(baseline_id=baseline_id)
        if baseline is None:
            raise exceptions.NotFound(f"No baseline {baseline_id}.")
        return Response(BaselineDetailSerializer(baseline).data)


class BaselinesSelectApi(APIView):
    """Operators: run baseline selection now, in the background. 202 with the job id and a URL to poll."""

    permission_classes = [CanOperate]

    @extend_schema(
        request=BaselinesSelectSerializer,
        responses={
            202: JobQueuedSerializer,
            409: OpenApiResponse(description="A baseline selection is already queued or running (`job_refused`)."),
        },
    )
    def post(self, request: Request) -> Response:
        params = BaselinesSelectSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job_id = baselines_select_enqueue(sensors=params.validated_data.get("sensors"), user=request.user)
        progress_url = request.build_absolute_uri(reverse("detection-api:job-progress", args=[job_id]))
        out = JobQueuedSerializer({"job_id": job_id, "progress_url": progress_url})
        return Response(out.data, status=status.HTTP_202_ACCEPTED)


class DetectionJobApi(APIView):
    """The state and progress of a baseline selection or augmentation job. Ids of other kinds of jobs: 404."""

    permission_classes = [CanRead]

    @extend_schema(responses=JobProgressSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        info = job_progress(job_id=job_id, kinds=JOB_TASKS)
        if info is None:
            raise exceptions.NotFound("No baseline job with this id.")
        return Response(JobProgressSerializer(info).data)


# --- a sensor's detector ------------------------------------------------------------------------------------------


def _detector_out(sensor: Sensor, config) -> dict:
    config.sensor = sensor  # the same row, already loaded: its key costs no query
    return DetectorSettingsSerializer(config, context={"state": detector_state_get(sensor=sensor)}).data


class SensorDetectorApi(APIView):
    """A sensor's detector settings and current state; operators change the settings (PATCH)."""

    permission_classes = [CanReadOrOperate]

    @extend_schema(parameters=[SENSOR_KEY_PARAMETER], responses=DetectorSettingsSerializer)
    def get(self, request: Request, key: str) -> Response:
        sensor = sensor_or_404(key)
        return Response(_detector_out(sensor, detector_settings_get(sensor=sensor)))

    @extend_schema(
        parameters=[SENSOR_KEY_PARAMETER], request=DetectorSettingsSerializer, responses=DetectorSettingsSerializer
    )
    def patch(self, request: Request, key: str) -> Response:
        from detection.services.settings import detector_settings_update

        sensor = sensor_or_404(key)
        params = DetectorSettingsSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        config = detector_settings_update(sensor=sensor, **params.validated_data)
        return Response(_detector_out(sensor, config))


class SensorFeedbackApi(APIView):
    """Operators: feedback mode on (the sensor's recent readings become part of its baseline) or off."""

    permission_classes = [CanOperate]

    @extend_schema(
        parameters=[SENSOR_KEY_PARAMETER],
        request=FeedbackSerializer,
        responses={
            200: DetectorSettingsSerializer,
            409: OpenApiResponse(description="Fewer than m readings (`not_enough_readings`), or no baseline."),
        },
    )
    def post(self, request: Request, key: str) -> Response:
        from detection.services.feedback import feedback_set

        sensor = sensor_or_404(key)
        params = FeedbackSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        config = feedback_set(sensor=sensor, **params.validated_data)
        return Response(_detector_out(sensor, config))
