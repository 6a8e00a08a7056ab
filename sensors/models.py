"""Platforms, installations, sensors and their readings.

`Reading` is the big table (tens of millions of rows): one unique index on (sensor, timestamp) both forbids a second
reading at the same instant and serves every time-range scan of one sensor. Each sensor also keeps its latest
reading (greatest timestamp) in `latest_timestamp`/`latest_value`, maintained by the ingestion service, so the
latest values of many sensors are one plain query.

A sensor may have an `HttpSource` (an HTTP JSON or CSV endpoint fetched on a schedule); each attempt leaves a
`SourceFetch` row.

A `DeviceKey` lets a device write the readings of one platform or one sensor, and nothing else.

On PostgreSQL `Reading` is partitioned by time range (pg_partman, migration 0006); `ReadingHourly` keeps hourly
statistics for ever, so raw readings may expire (docs/operations.md, "Partitions, roll-ups and retention").
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

SENSOR_KEY = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}"  # unanchored, for URL patterns
SENSOR_KEY_PATTERN = rf"^{SENSOR_KEY}$"
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
    raw_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=(
            "Days the raw readings of this platform's sensors are kept (their hourly roll-ups stay for ever). "
            "Empty: the site-wide setting SENSORS_RAW_RETENTION_DAYS."
        ),
    )
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
        if self.platform_id and self.installation is not None and self.installation.platform_id != self.platform_id:
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


class ReadingHourly(models.Model):
    """Statistics of one sensor's readings in one UTC hour, kept for ever (raw readings may expire).

    Enough to derive the average and to merge hours into longer buckets: count, sum, min, max, and the first and
    last timestamps. The ingestion service adds each stored reading to its hour in the same transaction
    (`sensors.ingest.rollups`), so a late reading or a re-import corrects its hour; duplicates are never counted.
    """

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="hourly", db_index=False)
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    count = models.PositiveBigIntegerField()
    sum = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()
    first_timestamp = models.DateTimeField()
    last_timestamp = models.DateTimeField()

    class Meta:
        verbose_name = "hourly roll-up"
        constraints = [
            # Also the index of every time-range scan of one sensor.
            models.UniqueConstraint(fields=["sensor", "hour"], name="sensors_readinghourly_unique_sensor_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} @ {self.hour:%Y-%m-%d %H:00%z}: {self.count} readings"


class Transport(models.TextChoices):
    """How a message reached the ingestion service (kept on each rejected message)."""

    PUBSUB = "pubsub", "Redis pub/sub"
    STREAM = "stream", "Redis stream"
    MQTT = "mqtt", "MQTT"
    REST = "rest", "REST API"
    CSV = "csv", "CSV import"
    HTTP_SOURCE = "external", "HTTP source"  # stored as "external", its first name
    SIMULATOR = "simulator", "Simulator"
    ADMIN = "admin", "Admin re-process"


class RejectedMessage(models.Model):
    """A message the ingestion service refused, kept (payload bounded) with the reason so staff can fix it."""

    PAYLOAD_LIMIT = 4096

    transport = models.CharField(max_length=20, choices=Transport.choices)
    payload = models.TextField(help_text=f"The raw message, cut at {PAYLOAD_LIMIT} characters.")
    payload_truncated = models.BooleanField(default=False)
    reason = models.TextField()
    sensor_key = models.CharField(max_length=100, blank=True, help_text="When the message named one.")
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_transport_display()}: {self.reason[:60]}"


# --- HTTP sources -----------------------------------------------------------------------------------------------

HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110 §5.6.2)
QUERY_PARAM_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,100}$")


def validate_headers(value) -> None:
    """Request headers: an object of header name → text value, nothing that could split a header line."""
    if not isinstance(value, dict):
        raise ValidationError('Headers are an object of name → value, e.g. {"X-Api-Key": "..."}.')
    for name, text in value.items():
        if not HEADER_NAME_RE.match(name):
            raise ValidationError(f"{name[:50]!r} is not a valid header name.")
        if not isinstance(text, str):
            raise ValidationError(f"The value of header {name!r} must be a string.")
        if any(char in text for char in "\r\n\x00"):
            raise ValidationError(f"The value of header {name!r} may not hold a line break.")


class HttpSource(models.Model):
    """An HTTP endpoint (JSON or CSV) whose records become readings of one sensor, fetched on a schedule.

    Fetches are incremental: only records newer than the sensor's latest stored reading are ingested (and
    `since_param`, when set, asks the endpoint for those only). The mapping says where the records are and which
    field holds the timestamp and the value. The state fields are written by `sensors.services.http_sources` only.
    """

    class Format(models.TextChoices):
        JSON = "json", "JSON"
        CSV = "csv", "CSV"

    class Delimiter(models.TextChoices):
        COMMA = ",", "comma (,)"
        SEMICOLON = ";", "semicolon (;)"
        TAB = "\t", "tab"
        PIPE = "|", "pipe (|)"

    sensor = models.OneToOneField(Sensor, on_delete=models.CASCADE, related_name="source")
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.JSON)
    url = models.URLField(
        "URL", max_length=2000, validators=[URLValidator(schemes=["http", "https"])], help_text="http or https (GET)."
    )
    since_param = models.CharField(
        max_length=100,
        blank=True,
        help_text=(
            "Query parameter that receives the time of the sensor's latest stored reading (ISO 8601, UTC, e.g. "
            "2024-12-01T12:00:00Z), so the endpoint can send only newer records. Empty: none is sent."
        ),
    )
    records_path = models.CharField(
        max_length=200,
        blank=True,
        help_text=(
            "JSON only: dotted path to the list of records, e.g. data.items (a number picks a list item). "
            "Empty: the document itself is the list."
        ),
    )
    timestamp_field = models.CharField(
        max_length=200,
        default="timestamp",
        help_text="JSON: the record's field (dotted path for nested objects). CSV: the column name in the header.",
    )
    value_field = models.CharField(
        max_length=200,
        default="value",
        help_text="JSON: the record's field (dotted path for nested objects). CSV: the column name in the header.",
    )
    csv_delimiter = models.CharField("CSV delimiter", max_length=1, choices=Delimiter.choices, default=Delimiter.COMMA)
    headers = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_headers],
        help_text=(
            'Extra request headers, e.g. {"X-Api-Key": "..."}. Stored in the database in clear text and shown to staff.'
        ),
    )
    enabled = models.BooleanField(default=True, help_text="Disabled sources are left out of the scheduled fetch.")
    timeout = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="Seconds to wait for the whole answer.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_fetched_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Start of the last attempt."
    )
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False, help_text="Empty once a fetch succeeds.")
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    # Set while a fetch runs (a claim, so two workers or "Fetch now" never fetch one source at once).
    fetching_since = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["sensor__key"]
        verbose_name = "HTTP source"

    def __str__(self) -> str:
        return f"{self.sensor} ← {self.get_format_display()} {self.url}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.format == self.Format.CSV and self.records_path:
            errors["records_path"] = "A CSV answer has no records path; leave it empty."
        for name in ("records_path", "timestamp_field", "value_field"):
            path = (getattr(self, name) or "").strip()
            setattr(self, name, path)
            if self.format == self.Format.JSON and path and any(not part for part in path.split(".")):
                errors.setdefault(name, "A dotted path may not have empty parts (e.g. 'a..b' or '.a').")
        if self.timestamp_field and self.timestamp_field == self.value_field:
            errors["value_field"] = "The value and the timestamp must come from different fields."
        if self.since_param and not QUERY_PARAM_RE.match(self.since_param):
            errors["since_param"] = "A query parameter name: 1-100 letters, digits, '_', '.', '-', '[' or ']'."
        if errors:
            raise ValidationError(errors)

    @property
    def status(self) -> str:
        """ "disabled", "never fetched", "failing" or "ok": what the last attempt says, for lists."""
        if not self.enabled:
            return "disabled"
        if self.consecutive_failures:
            return "failing"
        if self.last_success_at is None:
            return "never fetched"
        return "ok"


class SourceFetch(models.Model):
    """The log of one attempt to fetch an HTTP source (scheduled, admin or command).

    Counts: `received` = `skipped` + `stored` + `duplicates` + `rejected`, where `skipped` records were not newer
    than the sensor's latest stored reading when the fetch began.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"

    # No index of its own: (source, -started_at) below serves every lookup by source.
    source = models.ForeignKey(HttpSource, on_delete=models.CASCADE, related_name="fetches", db_index=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    since = models.DateTimeField(
        null=True, blank=True, help_text="The sensor's latest stored reading when the fetch began (the cut-off)."
    )
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    received = models.PositiveIntegerField(default=0, help_text="Records in the answer.")
    skipped = models.PositiveIntegerField(default=0, help_text="Records not newer than the cut-off.")
    stored = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0, help_text="Bad records (kept once as rejected messages).")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["source", "-started_at"], name="sensors_fetch_source_started"),
            models.Index(fields=["started_at"], name="sensors_fetch_started"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"


class DeviceKey(models.Model):
    """A secret a device sends (`Authorization: Device <key>`) to write readings of one platform or one sensor.

    Only the SHA-256 digest of the key is stored; the key itself is shown once, when created. A revoked key
    stops working at once and stays listed for the record.
    """

    PREFIX_LENGTH = 8

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False, help_text="The key's first characters.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, null=True, blank=True, related_name="device_keys")
    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, null=True, blank=True, related_name="device_keys")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(platform__isnull=False, sensor__isnull=True)
                | models.Q(platform__isnull=True, sensor__isnull=False),
                name="sensors_devicekey_one_target",
                violation_error_message="A device key is bound to exactly one platform or one sensor.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def target(self) -> str:
        return f"sensor {self.sensor}" if self.sensor_id else f"platform {self.platform}"

    def may_write(self, *, sensor_id: int, platform_id: int | None) -> bool:
        if self.sensor_id is not None:
            return self.sensor_id == sensor_id
        return platform_id is not None and self.platform_id == platform_id
