"""The sensors API: thin views over the catalogue services, the ingestion service and the selectors."""

from collections.abc import AsyncIterator
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Model
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.viewsets import ModelViewSet

from accounts.permissions import CanReadOrOperate
from common.exceptions import ApplicationError
from common.pagination import TimestampCursorPagination, page_size_schema
from common.parsers import JSONParser
from sensors.api.serializers import (
    BucketedReadingsSerializer,
    InstallationSerializer,
    LatestSerializer,
    PlatformSerializer,
    ReadingBatchResultSerializer,
    ReadingInSerializer,
    ReadingPageSerializer,
    ReadingQuerySerializer,
    ReadingsLatestQuerySerializer,
    SensorSerializer,
)
from sensors.filters import InstallationFilter, SensorFilter
from sensors.ingest import readings_ingest
from sensors.models import SENSOR_KEY, DeviceKey, Installation, Platform, Sensor, Transport
from sensors.permissions import CanWriteReadings
from sensors.selectors import (
    CSV_CHUNK_ROWS,
    Bucket,
    Latest,
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

# --- catalogue --------------------------------------------------------------------------------------------------


M = TypeVar("M", bound=Model)


def _changed(serializer: BaseSerializer[Any], model: type[M]) -> M:
    """The serializer's instance (a `model`) with the validated changes set (saved by the catalogue service, not
    here)."""
    instance = serializer.instance
    if not isinstance(instance, model):
        raise TypeError(f"expected a {model.__name__}, got {type(instance).__name__}")
    for name, value in serializer.validated_data.items():
        setattr(instance, name, value)
    return instance


class PlatformViewSet(ModelViewSet):
    """Platforms (sites), by slug. Viewers read, operators write (through the catalogue services, which run the
    model's full validation)."""

    permission_classes = [CanReadOrOperate]
    serializer_class = PlatformSerializer
    lookup_field = "slug"
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return platform_list()

    def perform_create(self, serializer) -> None:
        serializer.instance = platform_save(platform=Platform(**serializer.validated_data))

    def perform_update(self, serializer) -> None:
        serializer.instance = platform_save(platform=_changed(serializer, Platform))

    def perform_destroy(self, instance: Platform) -> None:
        platform_delete(platform=instance)


class InstallationViewSet(ModelViewSet):
    """Installations (structures on a platform), by id; filter `platform` (slug). Viewers read, operators write."""

    permission_classes = [CanReadOrOperate]
    serializer_class = InstallationSerializer
    filterset_class = InstallationFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return installation_list()

    def perform_create(self, serializer) -> None:
        serializer.instance = installation_save(installation=Installation(**serializer.validated_data))

    def perform_update(self, serializer) -> None:
        serializer.instance = installation_save(installation=_changed(serializer, Installation))

    def perform_destroy(self, instance: Installation) -> None:
        installation_delete(installation=instance)


class SensorViewSet(ModelViewSet):
    """Sensors, by key; filters `platform` (slug), `kind`, `active`, `installation` (id), `search` (key, name).
    Viewers read, operators write."""

    permission_classes = [CanReadOrOperate]
    serializer_class = SensorSerializer
    filterset_class = SensorFilter
    lookup_field = "key"
    lookup_value_regex = SENSOR_KEY
    search_fields = ["key", "name"]
    ordering_fields = ["key", "name", "created_at", "latest_timestamp"]

    def get_queryset(self):
        return sensor_list()

    def perform_create(self, serializer) -> None:
        serializer.instance = sensor_save(sensor=Sensor(**serializer.validated_data))

    def perform_update(self, serializer) -> None:
        serializer.instance = sensor_save(sensor=_changed(serializer, Sensor))

    def perform_destroy(self, instance: Sensor) -> None:
        sensor_delete(sensor=instance)


# --- writing readings -------------------------------------------------------------------------------------------


@extend_schema(tags=["readings"])
class ReadingBatchApi(APIView):
    """Store one reading or a list of them, all or nothing."""

    permission_classes = [CanWriteReadings]
    parser_classes = [JSONParser]

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="ReadingBatch",
            serializers=[
                ReadingInSerializer,
                # many=True makes a ListSerializer, which takes the bounds (the schema's minItems/maxItems).
                ReadingInSerializer(  # type: ignore[call-arg]  # the stubs know only Serializer's arguments
                    many=True, min_length=1, max_length=settings.SENSORS_REST_MAX_BATCH
                ),
            ],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            201: OpenApiResponse(ReadingBatchResultSerializer, description="At least one reading was stored."),
            200: OpenApiResponse(ReadingBatchResultSerializer, description="Every reading was already stored."),
        },
        description=(
            "One reading object or a list of up to SENSORS_REST_MAX_BATCH (10,000), each item at most "
            "SENSORS_MAX_MESSAGE_BYTES (64 KiB) as JSON. Any invalid item answers 400 "
            "with `fields` keyed by the item's index, and nothing of the request is stored."
        ),
    )
    def post(self, request: Request) -> Response:
        # The items are validated by the ingestion service (the same rules as every other path), not here.
        if request.stream is None:  # DRF reads an empty body as `{}`: one reading missing every field
            raise ApplicationError(
                "The body is empty: send one reading object or a non-empty list of them.", code="validation_error"
            )
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
        return Response(
            ReadingBatchResultSerializer(result).data,
            status=status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK,
        )


# --- querying readings ------------------------------------------------------------------------------------------


class CSVRenderer(BaseRenderer):
    """Selects CSV (`?format=csv` or `Accept: text/csv`); the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Nothing comes here: the view streams CSV itself and hands every other answer to JSON.
        raise TypeError("CSV answers are streamed by the view.")


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


SENSOR_KEY_PARAMETER = OpenApiParameter(
    "key", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{SENSOR_KEY}$", description="Sensor key."
)

READINGS_RESPONSE = PolymorphicProxySerializer(
    component_name="SensorReadings",
    serializers=[ReadingPageSerializer, BucketedReadingsSerializer],
    resource_type_field_name=None,
    many=False,
)


@extend_schema(tags=["readings"])
class SensorReadingsApi(APIView):
    """Raw readings of one sensor (cursor pages), or one aggregate per bucket; `format=csv` streams either."""

    # api_settings imports the dotted paths it is given; the stubs type the setting as those strings.
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]  # type: ignore[list-item]

    @extend_schema(
        parameters=[
            ReadingQuerySerializer,
            SENSOR_KEY_PARAMETER,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From `next`/`previous` (raw readings)."),
            OpenApiParameter(
                "page_size",
                page_size_schema(TimestampCursorPagination.max_page_size),
                description="Raw readings per page: 1000 by default, at most 10000.",
            ),
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=["json", "csv"], description="csv streams it (or `Accept: text/csv`)."
            ),
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
            buckets_out = BucketedReadingsSerializer(
                {**params, "sensor": sensor, "results": buckets}, context={"tz": zone}
            )
            return Response(buckets_out.data)

        if as_csv:
            chunks = reading_chunks_async(sensor=sensor, start=start, end=end)
            return _csv_response(_csv_readings(chunks, zone), f"{sensor.key}-readings.csv")
        paginator = TimestampCursorPagination()
        page = paginator.paginate_queryset(reading_list(sensor=sensor, start=start, end=end), request, view=self)
        out = ReadingPageSerializer(
            {"next": paginator.get_next_link(), "previous": paginator.get_previous_link(), "results": page},
            context={"tz": zone},
        )
        return Response(out.data)

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and isinstance(getattr(request, "accepted_renderer", None), CSVRenderer):
            # CSV bodies are streamed by the view (never a Response): errors keep the one JSON shape and OPTIONS its
            # JSON description even when CSV was asked for.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


@extend_schema(tags=["readings"])
class SensorLatestApi(APIView):
    """The latest reading of one sensor (nulls before its first reading)."""

    @extend_schema(parameters=[SENSOR_KEY_PARAMETER], responses=LatestSerializer)
    def get(self, request: Request, key: str) -> Response:
        sensor = sensor_or_404(key)
        latest = Latest(sensor=sensor.key, timestamp=sensor.latest_timestamp, value=sensor.latest_value)
        return Response(LatestSerializer(latest).data)


@extend_schema(tags=["readings"])
class ReadingsLatestApi(APIView):
    """The latest readings of many sensors in one query: `?sensor=a&sensor=b` and/or `?platform=<slug>`."""

    @extend_schema(parameters=[ReadingsLatestQuerySerializer], responses=LatestSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = ReadingsLatestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        keys = query.validated_data.get("sensor") or None
        platform = query.validated_data.get("platform") or None
        if keys is None and platform is None:
            raise ApplicationError(
                "Name sensors (?sensor=a&sensor=b) or a platform (?platform=<slug>).",
                code="validation_error",
                fields={"sensor": ["Give sensor or platform."]},
            )
        rows = readings_latest(keys=keys, platform=platform)
        return Response(LatestSerializer(rows, many=True).data)
