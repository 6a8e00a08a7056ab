"""Platforms, installations, sensors and their readings.

`Reading` is the big table (tens of millions of rows): one unique index on (sensor, timestamp) both forbids a second
reading at the same instant and serves every time-range scan of one sensor. Each sensor also keeps its latest
reading (greatest timestamp) in `latest_timestamp`/`latest_value`, maintained by the ingestion service, so the
latest values of many sensors are one plain query.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

SENSOR_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
sensor_key_validator = RegexValidator(
    SENSOR_KEY_PATTERN,
    "A sensor key is 1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit.",
)
POROSITY_SIDES = ("north", "east", "south", "west", "top", "bottom")


class Platform(models.Model):
    """A field or site that carries installations and sensors."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    latitude = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__isnull=False, longitude__isnull=False),
                name="sensors_platform_location_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name


def validate_porosity(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Porosity is an object of side → fraction.")
    for side, fraction in value.items():
        if side not in POROSITY_SIDES:
            raise ValidationError(f"Unknown side {side!r}; use {', '.join(POROSITY_SIDES)}.")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
            raise ValidationError(f"Porosity of {side!r} must be a number from 0 to 1.")


class Installation(models.Model):
    """A structure on a platform (the leak-detection service's "template") with its geometry."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="installations")
    name = models.CharField(max_length=200)
    height = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)], help_text="metres")
    orientation = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(360)],
        help_text="degrees from north",
    )
    volume = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)], help_text="cubic metres")
    porosity = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_porosity],
        help_text=f'fraction open per side, e.g. {{"north": 0.3}}; sides: {", ".join(POROSITY_SIDES)}',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["platform__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "name"], name="sensors_installation_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.platform} / {self.name}"


class SensorKind(models.TextChoices):
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    PRESSURE = "pressure"
    GAS = "gas"
    FLOW = "flow"
    LEVEL = "level"
    WIND = "wind"
    OTHER = "other"


class Sensor(models.Model):
    """A measuring point; devices publish under its `key`.

    `latest_timestamp`/`latest_value` hold the stored reading with the greatest timestamp (not the last to
    arrive); only the ingestion service writes them.
    """

    key = models.CharField(max_length=100, unique=True, validators=[sensor_key_validator])
    name = models.CharField(max_length=200, blank=True)
    platform = models.ForeignKey(Platform, on_delete=models.SET_NULL, null=True, blank=True, related_name="sensors")
    installation = models.ForeignKey(
        Installation, on_delete=models.SET_NULL, null=True, blank=True, related_name="sensors"
    )
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    z = models.FloatField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=SensorKind.choices, default=SensorKind.OTHER)
    unit = models.CharField(max_length=20, blank=True)
    active = models.BooleanField(default=True, help_text="Inactive sensors refuse new readings.")
    detection_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    latest_timestamp = models.DateTimeField(null=True, blank=True, editable=False)
    latest_value = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["key"]
        indexes = [models.Index(fields=["platform", "kind"], name="sensors_sensor_platform_kind")]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        if self.installation_id and self.platform_id and self.installation.platform_id != self.platform_id:
            raise ValidationError({"installation": "The installation belongs to another platform."})


class Reading(models.Model):
    """One value of one sensor at one instant; a second reading at the same instant is a duplicate."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="readings", db_index=False)
    timestamp = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        constraints = [
            # Also the index for time-range scans of one sensor (sensor_id, timestamp).
            models.UniqueConstraint(fields=["sensor", "timestamp"], name="sensors_reading_unique_sensor_timestamp"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} @ {self.timestamp:%Y-%m-%d %H:%M:%S%z} = {self.value}"


class IngestSource(models.TextChoices):
    PUBSUB = "pubsub", "Redis pub/sub"
    STREAM = "stream", "Redis stream"
    MQTT = "mqtt", "MQTT"
    REST = "rest", "REST API"
    CSV = "csv", "CSV import"
    EXTERNAL = "external", "External source"
    SIMULATOR = "simulator", "Simulator"
    ADMIN = "admin", "Admin re-process"


class RejectedMessage(models.Model):
    """A message the ingestion service refused, kept (payload bounded) with the reason so staff can fix it."""

    PAYLOAD_LIMIT = 4096

    source = models.CharField(max_length=20, choices=IngestSource.choices)
    payload = models.TextField(help_text=f"The raw message, cut at {PAYLOAD_LIMIT} characters.")
    payload_truncated = models.BooleanField(default=False)
    reason = models.TextField()
    sensor_key = models.CharField(max_length=100, blank=True, help_text="When the message named one.")
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_source_display()}: {self.reason[:60]}"
