"""Input parsing and output shapes of the sensors API; no business rules (those are in services and the models)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.inputs import InstantField, SlugRelatedField
from sensors.models import POROSITY_SIDES, SENSOR_KEY, HttpSource, Installation, Platform, Sensor
from sensors.selectors import AGGREGATES, BUCKETS, Bucket

# --- catalogue --------------------------------------------------------------------------------------------------


class PlatformSerializer(serializers.ModelSerializer):
    class Meta:
        model = Platform
        fields = ["slug", "name", "description", "latitude", "longitude", "created_at"]
        read_only_fields = ["created_at"]


@extend_schema_field(
    {
        "type": "object",
        "properties": {side: {"type": "number", "minimum": 0, "maximum": 1} for side in POROSITY_SIDES},
        "additionalProperties": False,
    }
)
class PorosityField(serializers.JSONField):
    """An installation's porosity as the schema shows it; the model's validator checks it."""


class InstallationSerializer(serializers.ModelSerializer):
    platform = SlugRelatedField(slug_field="slug", queryset=Platform.objects.all())
    porosity = PorosityField(required=False, help_text=str(Installation._meta.get_field("porosity").help_text))

    class Meta:
        model = Installation
        fields = ["id", "platform", "name", "height", "orientation", "volume", "porosity", "created_at"]
        read_only_fields = ["id", "created_at"]


class LatestValueSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(source="latest_timestamp", allow_null=True, read_only=True)
    value = serializers.FloatField(source="latest_value", allow_null=True, read_only=True)


class SensorSourceStatusSerializer(serializers.ModelSerializer):
    """A sensor's external source as viewers may see it: no URL and no headers (either may hold a key)."""

    status = serializers.ChoiceField(
        choices=["ok", "failing", "never fetched", "disabled"], read_only=True, help_text="What the last attempt says."
    )

    class Meta:
        model = HttpSource
        fields = ["format", "enabled", "status", "last_fetched_at", "last_success_at", "consecutive_failures"]
        read_only_fields = fields


class SensorSerializer(serializers.ModelSerializer):
    platform = SlugRelatedField(slug_field="slug", queryset=Platform.objects.all(), allow_null=True, required=False)
    latest = LatestValueSerializer(source="*", read_only=True, help_text="The reading with the greatest timestamp.")
    # A field named like `Field.source`: DRF's metaclass takes declared fields out of the class; the stubs cannot tell.
    source = SensorSourceStatusSerializer(  # type: ignore[assignment]
        read_only=True, allow_null=True, help_text="The external source, if any (set up by staff in the admin)."
    )

    class Meta:
        model = Sensor
        fields = [
            "key",
            "name",
            "platform",
            "installation",
            "x",
            "y",
            "z",
            "kind",
            "unit",
            "active",
            "detection_enabled",
            "created_at",
            "latest",
            "source",
        ]
        read_only_fields = ["created_at"]


# --- readings ---------------------------------------------------------------------------------------------------


class ReadingInSerializer(serializers.Serializer):
    """The schema of one reading sent to `POST /api/v1/readings/` (validated by the ingestion service)."""

    sensor = serializers.RegexField(f"^{SENSOR_KEY}$", max_length=100, help_text="Sensor key.")
    value = serializers.FloatField(help_text="A finite number.")
    timestamp = serializers.DateTimeField(
        help_text="ISO 8601; naive times are read in SENSORS_NAIVE_TIMEZONE (UTC). Not far in the future."
    )


class ReadingBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Readings already stored (same sensor and timestamp).")


class ReadingQuerySerializer(serializers.Serializer):
    start = InstantField(required=False, help_text="ISO 8601, inclusive; naive = UTC.")
    end = InstantField(required=False, help_text="ISO 8601, exclusive; naive = UTC.")
    bucket = serializers.ChoiceField(choices=list(BUCKETS), required=False, help_text="Aggregate per bucket.")
    agg = serializers.ChoiceField(choices=list(AGGREGATES), required=False, help_text="With `bucket`; default avg.")
    tz = serializers.CharField(
        required=False, default="UTC", help_text="IANA zone of the output times and of daily buckets."
    )

    def validate_tz(self, value: str) -> ZoneInfo:
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError(f"{value[:50]!r} is not an IANA time zone.") from None

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        if "agg" in attrs and "bucket" not in attrs:
            raise serializers.ValidationError({"agg": ["Needs a bucket."]})
        attrs.setdefault("agg", "avg")
        return attrs


@extend_schema_field(OpenApiTypes.DATETIME)
class OffsetDateTimeField(serializers.Field):
    """Output only: ISO 8601 with the offset of the zone in the context's `tz` (UTC by default), e.g.
    `2024-12-01T13:00:00+01:00` (DRF's DateTimeField would convert to the current zone and write UTC as `Z`)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: datetime) -> str:
        return value.astimezone(self.context.get("tz", UTC)).isoformat()


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field):
    """Output only: a number as it is (a `count` aggregate stays an integer; FloatField would write `3.0`)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: float) -> float:
        return value


class ReadingOutSerializer(serializers.Serializer):
    timestamp = OffsetDateTimeField(help_text="ISO 8601 with the offset of `tz`.")
    value = serializers.FloatField()

    def to_representation(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        # A page holds up to 10,000 readings: the two fields applied directly take half the time of DRF's generic
        # loop over fields (same output; sensors/tests/test_api.py compares them).
        zone = self.context.get("tz", UTC)
        return {"timestamp": instance["timestamp"].astimezone(zone).isoformat(), "value": float(instance["value"])}


class ReadingPageSerializer(serializers.Serializer):
    """A cursor page of raw readings (TimestampCursorPagination's links)."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReadingOutSerializer(many=True)


class BucketOutSerializer(serializers.Serializer):
    bucket_start = OffsetDateTimeField(source="start", help_text="ISO 8601 with the offset of `tz`.")
    value = NumberField(allow_null=True, help_text="The aggregate (an integer for `count`).")

    def to_representation(self, instance: Bucket) -> dict[str, Any]:
        # Up to a year of buckets: the two fields applied directly, as for readings (same output, tested).
        zone = self.context.get("tz", UTC)
        return {"bucket_start": instance.start.astimezone(zone).isoformat(), "value": instance.value}


class BucketedReadingsSerializer(serializers.Serializer):
    sensor = serializers.CharField(source="sensor.key")
    bucket = serializers.ChoiceField(choices=list(BUCKETS))
    agg = serializers.ChoiceField(choices=list(AGGREGATES))
    tz = serializers.CharField(source="tz.key", help_text="The IANA zone asked for.")
    results = BucketOutSerializer(many=True)


LATEST_MAX_SENSORS = 1000


class ReadingsLatestQuerySerializer(serializers.Serializer):
    """Parsing only (text without NUL characters); the view says which combinations it takes."""

    sensor = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=LATEST_MAX_SENSORS,
        help_text=f"Sensor key; repeat for more (at most {LATEST_MAX_SENSORS}).",
    )
    platform = serializers.CharField(required=False, help_text="Every sensor of this platform (slug).")


class LatestSerializer(serializers.Serializer):
    sensor = serializers.CharField()
    timestamp = OffsetDateTimeField(allow_null=True, help_text="ISO 8601, UTC; null before the first reading.")
    value = serializers.FloatField(allow_null=True)
