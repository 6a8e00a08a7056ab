"""Input parsing and output shapes of the detection API; no business rules (those are in the services)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.models import (
    Anomaly,
    Baseline,
    Detection,
    DetectorSettings,
    DetectorState,
    SensorEvent,
    SystemEvent,
)

# --- detections ---------------------------------------------------------------------------------------------------


class DetectionSerializer(serializers.ModelSerializer):
    level = serializers.FloatField(allow_null=True, help_text="% of the baseline's max distance; null if undefined.")
    distance = serializers.FloatField(allow_null=True, help_text="The newest matrix-profile value (the score).")

    class Meta:
        model = Detection
        fields = ["timestamp", "status", "level", "distance"]
        read_only_fields = fields


# --- anomalies ----------------------------------------------------------------------------------------------------


class AnomalySerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.key", read_only=True)
    active = serializers.SerializerMethodField(help_text="True while the alarm is on (closed_at is null).")
    acknowledged_by = serializers.EmailField(source="acknowledged_by.email", allow_null=True, read_only=True)
    resolved_by = serializers.EmailField(source="resolved_by.email", allow_null=True, read_only=True)

    class Meta:
        model = Anomaly
        fields = [
            "id",
            "sensor",
            "status",
            "active",
            "started_at",
            "ended_at",
            "closed_at",
            "peak_level",
            "peak_at",
            "peak_status",
            "flagged",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "note",
        ]
        read_only_fields = fields

    def get_active(self, anomaly: Anomaly) -> bool:
        return anomaly.closed_at is None


class AnomalyAcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class AnomalyResolveSerializer(serializers.Serializer):
    cause = serializers.ChoiceField(
        choices=[Anomaly.State.RESOLVED, Anomaly.State.EXTERNAL_CAUSE], default=Anomaly.State.RESOLVED
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


# --- events -------------------------------------------------------------------------------------------------------


class SensorEventSerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.key", read_only=True)

    class Meta:
        model = SensorEvent
        fields = ["id", "sensor", "kind", "at", "level", "anomaly", "message", "created_at"]
        read_only_fields = fields


class SystemEventSerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.key", allow_null=True, read_only=True)

    class Meta:
        model = SystemEvent
        fields = ["id", "kind", "job", "sensor", "message", "data", "created_at"]
        read_only_fields = fields


# --- baselines ----------------------------------------------------------------------------------------------------


class BaselineSerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.key", allow_null=True, read_only=True)
    # A field named like `Field.parent`: DRF's metaclass takes declared fields out of the class; the stubs cannot tell.
    parent = serializers.IntegerField(  # type: ignore[assignment]
        source="parent_id", allow_null=True, read_only=True
    )

    class Meta:
        model = Baseline
        fields = [
            "id",
            "name",
            "kind",
            "sensor",
            "parent",
            "window",
            "points",
            "mean",
            "variance",
            "max_distance",
            "description",
            "created_at",
        ]
        read_only_fields = fields


class BaselineDetailSerializer(BaselineSerializer):
    values = serializers.SerializerMethodField(help_text="The series, oldest first.")

    class Meta(BaselineSerializer.Meta):
        fields = [*BaselineSerializer.Meta.fields, "values"]
        read_only_fields = fields

    def get_values(self, baseline: Baseline) -> list[float]:
        return baseline.array().tolist()


class BaselinesSelectSerializer(serializers.Serializer):
    sensors = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        allow_null=True,
        allow_empty=False,
        min_length=1,
        max_length=10_000,
        help_text="Sensor keys; absent or null: every sensor with detection enabled.",
    )


class JobQueuedSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    progress_url = serializers.URLField()


# --- a sensor's detector ------------------------------------------------------------------------------------------


class DetectorStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=DetectorState.SensorState.choices)
    fed = serializers.IntegerField(help_text="Readings detected so far.")
    last_timestamp = serializers.DateTimeField(allow_null=True, help_text="The newest detected reading.")
    anomaly = serializers.IntegerField(
        source="anomaly_id", allow_null=True, help_text="The anomaly the detector tracks now, if any."
    )
    baseline = serializers.IntegerField(
        source="baseline_id", allow_null=True, help_text="The baseline the detector runs on now."
    )


def _help(name: str) -> str:
    return str(getattr(DetectorSettings._meta.get_field(name), "help_text", ""))


@extend_schema_field({"type": "number", "format": "double", "minimum": 0, "exclusiveMinimum": True})
class LevelField(serializers.FloatField):
    """A detection level in % (above 0: `detector_settings_update` refuses the rest)."""


class DetectorSettingsSerializer(serializers.ModelSerializer):
    """Output of a sensor's detector; input (PATCH) takes the editable fields only."""

    warning_level = LevelField(required=False, help_text=_help("warning_level"))
    critical_level = LevelField(required=False, help_text=_help("critical_level"))

    sensor = serializers.CharField(source="sensor.key", read_only=True, help_text="Sensor key.")
    baseline = serializers.PrimaryKeyRelatedField(
        queryset=Baseline.objects.defer("values"),
        allow_null=True,
        required=False,
        help_text="A seed or one of the sensor's own baselines; null: the default seed.",
    )
    feedback_baseline = serializers.IntegerField(source="feedback_baseline_id", allow_null=True, read_only=True)
    active_baseline = serializers.SerializerMethodField(help_text="What detection uses now (null: default seed).")
    detector = serializers.SerializerMethodField(help_text="Null before the sensor's first detection.")
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Null until the settings are first saved (the defaults apply)."
    )

    class Meta:
        model = DetectorSettings
        fields = [
            "sensor",
            "method",
            "window",
            "warning_level",
            "critical_level",
            "ok_run",
            "cooldown_seconds",
            "silence_seconds",
            "baseline",
            "feedback_enabled",
            "feedback_baseline",
            "active_baseline",
            "last_selection_at",
            "last_augmentation_at",
            "updated_at",
            "detector",
        ]
        read_only_fields = ["feedback_enabled", "last_selection_at", "last_augmentation_at", "updated_at"]
        extra_kwargs = {
            "method": {"required": False},
            # What a field alone must be (the service checks the rules between fields: window ≤ 300 with the
            # discord method, warning ≤ critical, the baseline's 2m points).
            "window": {"required": False, "min_value": 4},
            "ok_run": {"min_value": 1},
        }

    def get_active_baseline(self, config: DetectorSettings) -> int | None:
        return config.active_baseline_id()

    @extend_schema_field(DetectorStateSerializer(allow_null=True))
    def get_detector(self, config: DetectorSettings) -> dict | None:
        state = self.context.get("state")
        if state is None:
            return None
        return DetectorStateSerializer(state).data


class FeedbackSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    points = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Recent readings taken as normal: default 2m, at least m (the window), at most 5,000 (or 2m).",
    )
