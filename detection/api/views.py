"""The detection API: thin views over the detection selectors and services (docs/api.md, "Detection").

Viewers read everything; operators act on anomalies, change a sensor's detector, switch feedback mode and
queue baseline selection. Device keys read nothing here (as everywhere in the API but readings).

The services that reach the detector (settings, feedback) are imported inside the views that use them: they
import stumpy, which takes seconds, and the web process loads this module at start-up (the `web-no-stumpy`
contract in pyproject.toml lists these two imports as its only exceptions).
"""

from __future__ import annotations

import django_filters
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import CanOperate, CanRead, CanReadOrOperate
from common.jobs import JobProgressSerializer, job_progress
from common.pagination import PageNumberPagination, TimestampCursorPagination
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
from sensors.api.views import sensor_or_404
from sensors.models import Sensor

SENSOR_KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="Sensor key.")
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="Page number (from 1)."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="50 by default, at most 1000."),
]


def filter_parameters(filterset_class: type[django_filters.FilterSet]) -> list[OpenApiParameter]:
    """The query parameters of a FilterSet as the schema shows them (the selectors apply the filters, so DRF's
    filter backends, from which drf-spectacular would read them, are not used here)."""
    types = {
        django_filters.IsoDateTimeFilter: OpenApiTypes.DATETIME,
        django_filters.BooleanFilter: OpenApiTypes.BOOL,
    }
    return [
        OpenApiParameter(
            name,
            next((t for cls, t in types.items() if isinstance(field, cls)), OpenApiTypes.STR),
            description=field.extra.get("help_text", ""),
        )
        for name, field in filterset_class.base_filters.items()
    ]


class ListApi(APIView):
    """A read-only list in pages. `pagination_class` is not used by a plain APIView: it is set so the schema shows
    the paginated shape (drf-spectacular reads it), and `paginated` uses the same class."""

    permission_classes = [CanRead]
    pagination_class: type = PageNumberPagination


def paginated(request: Request, view: ListApi, queryset, serializer_class) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


# --- detections ---------------------------------------------------------------------------------------------------


class SensorDetectionListApi(ListApi):
    """One sensor's detections (level, status), oldest first, in cursor pages; 404 for an unknown sensor."""

    pagination_class = TimestampCursorPagination

    @extend_schema(
        parameters=[
            SENSOR_KEY_PARAMETER,
            *filter_parameters(DetectionFilter),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From `next`/`previous`."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1000 by default, at most 10000."),
        ],
        responses=DetectionSerializer(many=True),
    )
    def get(self, request: Request, key: str) -> Response:
        sensor = sensor_or_404(key)
        return paginated(
            request, self, detection_list(sensor=sensor, filters=request.query_params), DetectionSerializer
        )


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


class AnomalyListApi(ListApi):
    """Anomalies, newest first."""

    @extend_schema(
        parameters=[*filter_parameters(AnomalyFilter), *PAGE_PARAMETERS],
        responses=AnomalySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return paginated(request, self, anomaly_list(filters=request.query_params), AnomalySerializer)


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


class SensorEventListApi(ListApi):
    """Sensor events (state changes: critical, ok, not_available), newest first."""

    @extend_schema(
        parameters=[*filter_parameters(SensorEventFilter), *PAGE_PARAMETERS],
        responses=SensorEventSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return paginated(request, self, sensor_event_list(filters=request.query_params), SensorEventSerializer)


class SystemEventListApi(ListApi):
    """System events reported by jobs (alert_critical, alert_success, info), newest first."""

    @extend_schema(
        parameters=[*filter_parameters(SystemEventFilter), *PAGE_PARAMETERS],
        responses=SystemEventSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return paginated(request, self, system_event_list(filters=request.query_params), SystemEventSerializer)


# --- baselines ----------------------------------------------------------------------------------------------------


class BaselineListApi(ListApi):
    """Baselines by name, with their statistics; the values are in the detail only."""

    @extend_schema(
        parameters=[*filter_parameters(BaselineFilter), *PAGE_PARAMETERS],
        responses=BaselineSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        return paginated(request, self, baseline_list(filters=request.query_params), BaselineSerializer)


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

    @extend_schema(request=BaselinesSelectSerializer, responses={202: JobQueuedSerializer})
    def post(self, request: Request) -> Response:
        params = BaselinesSelectSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job_id = baselines_select_enqueue(sensors=params.validated_data.get("sensors"))
        progress_url = request.build_absolute_uri(reverse("detection-api:job-progress", args=[job_id]))
        return Response({"job_id": job_id, "progress_url": progress_url}, status=status.HTTP_202_ACCEPTED)


class DetectionJobApi(APIView):
    """The state and progress of a baseline selection or augmentation job. Ids of other kinds of jobs: 404."""

    permission_classes = [CanRead]

    @extend_schema(responses=JobProgressSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        info = job_progress(job_id=job_id, task_names=JOB_TASKS)
        if info is None:
            raise exceptions.NotFound("No baseline job with this id.")
        return Response(info)


# --- a sensor's detector ------------------------------------------------------------------------------------------


def _detector_out(sensor: Sensor, config) -> dict:
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
