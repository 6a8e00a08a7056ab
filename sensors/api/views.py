"""The sensors API: thin views over the catalogue services, the ingestion service and the selectors."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, tzinfo

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.viewsets import ModelViewSet

from accounts.permissions import CanReadOrOperate
from common.exceptions import ApplicationError
from common.pagination import TimestampCursorPagination
from sensors.api.serializers import (
    BucketedReadingsSerializer,
    InstallationSerializer,
    LatestSerializer,
    PlatformSerializer,
    ReadingBatchResultSerializer,
    ReadingInSerializer,
    ReadingPageSerializer,
    ReadingQuerySerializer,
    SensorSerializer,
)
from sensors.filters import InstallationFilter, SensorFilter
from sensors.ingest import readings_ingest
from sensors.models import SENSOR_KEY, DeviceKey, Installation, Platform, Sensor, Transport
from sensors.permissions import CanWriteReadings
from sensors.selectors import (
    CSV_CHUNK_ROWS,
    Bucket,
    installation_list,
    platform_list,
    reading_chunks_async,
    reading_list,
    readings_bucketed,
    readings_latest,
    sensor_get,
    sensor_list,
)
from sensors.services.catalog import (
    installation_delete,
    installation_save,
    platform_delete,
    platform_save,
    sensor_delete,
    sensor_save,
)

LATEST_MAX_SENSORS = 1000

# --- catalogue --------------------------------------------------------------------------------------------------


class CatalogViewSet(ModelViewSet):
    """CRUD whose writes go through the catalogue services (full model validation, one place)."""

    permission_classes = [CanReadOrOperate]
    model: type
    save_service: Callable  # the catalogue service that validates and saves one instance
    delete_service: Callable

    def perform_create(self, serializer) -> None:
        serializer.instance = self.save_service(self.model(**serializer.validated_data))

    def perform_update(self, serializer) -> None:
        instance = serializer.instance
        for name, value in serializer.validated_data.items():
            setattr(instance, name, value)
        serializer.instance = self.save_service(instance)

    def perform_destroy(self, instance) -> None:
        self.delete_service(instance)


class PlatformViewSet(CatalogViewSet):
    """Platforms (sites), by slug. Viewers read, operators write."""

    model = Platform
    serializer_class = PlatformSerializer
    lookup_field = "slug"
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at"]
    save_service = staticmethod(lambda instance: platform_save(platform=instance))
    delete_service = staticmethod(lambda instance: platform_delete(platform=instance))

    def get_queryset(self):
        return platform_list()


class InstallationViewSet(CatalogViewSet):
    """Installations (structures on a platform), by id; filter `platform` (slug)."""

    model = Installation
    serializer_class = InstallationSerializer
    filterset_class = InstallationFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    save_service = staticmethod(lambda instance: installation_save(installation=instance))
    delete_service = staticmethod(lambda instance: installation_delete(installation=instance))

    def get_queryset(self):
        return installation_list()


class SensorViewSet(CatalogViewSet):
    """Sensors, by key; filters `platform` (slug), `kind`, `active`, `installation` (id), `search` (key, name)."""

    model = Sensor
    serializer_class = SensorSerializer
    filterset_class = SensorFilter
    lookup_field = "key"
    lookup_value_regex = SENSOR_KEY
    search_fields = ["key", "name"]
    ordering_fields = ["key", "name", "created_at", "latest_timestamp"]
    save_service = staticmethod(lambda instance: sensor_save(sensor=instance))
    delete_service = staticmethod(lambda instance: sensor_delete(sensor=instance))

    def get_queryset(self):
        return sensor_list()


# --- writing readings -------------------------------------------------------------------------------------------


class ReadingBatchApi(APIView):
    """Store one reading or a list of them, all or nothing."""

    permission_classes = [CanWriteReadings]
    parser_classes = [JSONParser]

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="ReadingBatch",
            serializers=[ReadingInSerializer, ReadingInSerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            201: OpenApiResponse(ReadingBatchResultSerializer, description="At least one reading was stored."),
            200: OpenApiResponse(ReadingBatchResultSerializer, description="Every reading was already stored."),
        },
        description=(
            "One reading object or a list of up to SENSORS_REST_MAX_BATCH (10,000). Any invalid item answers 400 "
            "with `fields` keyed by the item's index, and nothing of the request is stored."
        ),
    )
    def post(self, request: Request) -> Response:
        items = [request.data] if isinstance(request.data, dict) else request.data
        if not isinstance(items, list) or not items:
            raise ApplicationError("Send one reading object or a non-empty list of them.", code="validation_error")
        limit = settings.SENSORS_REST_MAX_BATCH
        if len(items) > limit:
            raise ApplicationError(
                f"{len(items):,} readings in one request; the limit is {limit:,}.", code="too_many_readings"
            )
        device_key = request.auth if isinstance(request.auth, DeviceKey) else None
        result = readings_ingest(
            messages=items, transport=Transport.REST, atomic=True, decoded=True, device_key=device_key
        )
        body = {"received": result.received, "stored": result.stored, "duplicates": result.duplicates}
        return Response(body, status=status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK)


# --- querying readings ------------------------------------------------------------------------------------------


class CSVRenderer(BaseRenderer):
    """Selects CSV (`?format=csv` or `Accept: text/csv`); the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only error answers could come here, and the view hands those to JSON.
        raise TypeError("CSV answers are streamed by the view.")


def iso(moment: datetime | None, zone: tzinfo = UTC) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def sensor_or_404(key: str) -> Sensor:
    sensor = sensor_get(key=key)
    if sensor is None:
        raise exceptions.NotFound(f"No sensor {key!r}.")
    return sensor


async def _csv_readings(chunks: AsyncIterator[list[tuple[datetime, float]]], zone: tzinfo) -> AsyncIterator[str]:
    yield "timestamp,value\n"
    async for chunk in chunks:
        yield "".join(f"{moment.astimezone(zone).isoformat()},{value!r}\n" for moment, value in chunk)


async def _csv_buckets(buckets: list[Bucket], chunk: int = CSV_CHUNK_ROWS) -> AsyncIterator[str]:
    yield "bucket_start,value\n"
    for first in range(0, len(buckets), chunk):
        yield "".join(
            f"{b.start.isoformat()},{'' if b.value is None else repr(b.value)}\n"
            for b in buckets[first : first + chunk]
        )


def _csv_response(lines: AsyncIterator[str], filename: str) -> StreamingHttpResponse:
    # An async iterator: under ASGI (daphne) Django would buffer a sync one entirely before sending.
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


READINGS_RESPONSE = PolymorphicProxySerializer(
    component_name="SensorReadings",
    serializers=[ReadingPageSerializer, BucketedReadingsSerializer],
    resource_type_field_name=None,
    many=False,
)


class SensorReadingsApi(APIView):
    """Raw readings of one sensor (cursor pages), or one aggregate per bucket; `format=csv` streams either."""

    # api_settings imports the dotted paths it is given; the stubs type the setting as those strings.
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]  # type: ignore[list-item]

    @extend_schema(
        parameters=[
            ReadingQuerySerializer,
            OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="Sensor key."),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From `next`/`previous` (raw readings)."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Raw readings per page: 1000, at most 10000."),
        ],
        responses={
            200: OpenApiResponse(READINGS_RESPONSE, description="JSON, or CSV with `format=csv`."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="timestamp,value or bucket_start,value"),
        },
    )
    def get(self, request: Request, key: str):
        sensor = sensor_or_404(key)
        query = ReadingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        zone, start, end = params["tz"], params.get("start"), params.get("end")
        as_csv = request.accepted_renderer.format == "csv"

        if "bucket" in params:
            buckets = readings_bucketed(
                sensor=sensor, bucket=params["bucket"], agg=params["agg"], tz=zone, start=start, end=end
            )
            if as_csv:
                return _csv_response(_csv_buckets(buckets), f"{sensor.key}-{params['bucket']}.csv")
            return Response(
                {
                    "sensor": sensor.key,
                    "bucket": params["bucket"],
                    "agg": params["agg"],
                    "tz": zone.key,
                    "results": [{"bucket_start": b.start.isoformat(), "value": b.value} for b in buckets],
                }
            )

        if as_csv:
            chunks = reading_chunks_async(sensor=sensor, start=start, end=end)
            return _csv_response(_csv_readings(chunks, zone), f"{sensor.key}-readings.csv")
        paginator = TimestampCursorPagination()
        page = paginator.paginate_queryset(reading_list(sensor=sensor, start=start, end=end), request, view=self)
        return paginator.get_paginated_response(
            [{"timestamp": iso(row["timestamp"], zone), "value": row["value"]} for row in page or []]
        )

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and response.status_code >= 400:
            # Errors keep the one JSON shape even when CSV was asked for.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def _latest_out(key: str, timestamp: datetime | None, value: float | None) -> dict:
    return {"sensor": key, "timestamp": iso(timestamp), "value": value}


class SensorLatestApi(APIView):
    """The latest reading of one sensor (nulls before its first reading)."""

    @extend_schema(
        parameters=[OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="Sensor key.")],
        responses=LatestSerializer,
    )
    def get(self, request: Request, key: str) -> Response:
        sensor = sensor_or_404(key)
        return Response(_latest_out(sensor.key, sensor.latest_timestamp, sensor.latest_value))


class ReadingsLatestApi(APIView):
    """The latest readings of many sensors in one query: `?sensor=a&sensor=b` and/or `?platform=<slug>`."""

    @extend_schema(
        parameters=[
            OpenApiParameter("sensor", OpenApiTypes.STR, many=True, description="Sensor key; repeat for more."),
            OpenApiParameter("platform", OpenApiTypes.STR, description="Every sensor of this platform (slug)."),
        ],
        responses=LatestSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        keys = request.query_params.getlist("sensor") or None
        platform = request.query_params.get("platform") or None
        if keys is None and platform is None:
            raise ApplicationError(
                "Name sensors (?sensor=a&sensor=b) or a platform (?platform=<slug>).",
                code="validation_error",
                fields={"sensor": ["Give sensor or platform."]},
            )
        if keys is not None and len(keys) > LATEST_MAX_SENSORS:
            raise ApplicationError(
                f"At most {LATEST_MAX_SENSORS} sensors per request.",
                code="validation_error",
                fields={"sensor": [f"{len(keys)} given; at most {LATEST_MAX_SENSORS}."]},
            )
        rows = readings_latest(keys=keys, platform=platform)
        return Response([_latest_out(row.sensor, row.timestamp, row.value) for row in rows])
