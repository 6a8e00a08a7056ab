"""Matrix-profile detection: baselines, per-sensor detector settings and state, detections, anomalies, events.

Arrays (baseline values, a detector's recent values) are stored as plain little-endian float64 bytes, never as
pickled library objects: any worker rebuilds the stumpy object from them (docs/detection.md, "State").
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import models
from django.db.models import Q

from sensors.models import Sensor

FLOAT64 = np.dtype("<f8")


def array_to_bytes(values) -> bytes:
    """A 1-D float64 array as little-endian bytes (the storage form of every array in this app)."""
    return np.ascontiguousarray(values, dtype=FLOAT64).tobytes()


def array_from_bytes(data: bytes | memoryview | None) -> np.ndarray:
    """The inverse of `array_to_bytes` (a writable copy)."""
    if not data:
        return np.empty(0, dtype=np.float64)
    return np.frombuffer(bytes(data), dtype=FLOAT64).astype(np.float64)


class Status(models.TextChoices):
    """A reading's detection status: `undefined` until the detector has more than m of the sensor's own values."""

    UNDEFINED = "undefined", "Undefined"
    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"
    # Committed after a newer reading of the same sensor had been detected: kept out of the series, no level.
    LATE = "late", "Late"


FLAGGED = (Status.WARNING, Status.CRITICAL)


class Method(models.TextChoices):
    """How a sensor's readings are judged (docs/detection.md, "Methods").

    `discord`: each new subsequence against the sensor's own recent past (detection/discord.py), no baseline; the
    default for new sensors, chosen by measurement on real labeled series. `baseline`: the leak-detection service's
    matrix profile against a baseline (detection/engine.py); sensors detected before methods existed keep it.
    """

    DISCORD = "discord", "Discord (against the sensor's own recent past)"
    BASELINE = "baseline", "Baseline matrix profile (the leak-detection service's)"


class Baseline(models.Model):
    """A series of normal behaviour that a detector is seeded with, and its statistics.

    Seeds (`kind=seed`, no sensor) ship with the app (`manage.py load_baselines`); the others belong to one
    sensor: built from its first cleaned readings, augmented with its cleaned history, or its feedback baseline.
    A baseline is never changed once detectors use it: augmentation makes a new one.
    """

    class Kind(models.TextChoices):
        SEED = "seed", "Seed"
        BUILT = "built", "Built from the sensor's readings"
        AUGMENTED = "augmented", "Augmented with the sensor's history"
        FEEDBACK = "feedback", "Feedback"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    sensor = models.ForeignKey(
        Sensor, on_delete=models.CASCADE, null=True, blank=True, related_name="baselines", db_index=False
    )
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    window = models.PositiveIntegerField(help_text="The window m its max distance was computed for.")
    values = models.BinaryField(editable=False, help_text="float64, little-endian")
    points = models.PositiveIntegerField(editable=False)
    mean = models.FloatField(editable=False)
    variance = models.FloatField(editable=False)
    max_distance = models.FloatField(
        editable=False, help_text="The largest value of the baseline's own matrix profile for its window."
    )
    joins = models.JSONField(
        default=list, editable=False, help_text="Indices where a new piece starts (cuts of cleaning, appended history)."
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["sensor", "kind", "-created_at"], name="detection_baseline_sensor")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="seed", sensor__isnull=True) | (~Q(kind="seed") & Q(sensor__isnull=False)),
                name="detection_baseline_seed_has_no_sensor",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def array(self) -> np.ndarray:
        return array_from_bytes(self.values)


class DetectorSettings(models.Model):
    """How one sensor is detected; edited by staff and operators (never by the detector itself).

    Created with defaults from the DETECTION_* settings the first time the sensor is detected. A change of
    window or baseline restarts the sensor's detector from the new baseline (its recent values are replayed).
    """

    sensor = models.OneToOneField(Sensor, on_delete=models.CASCADE, primary_key=True, related_name="detector")
    method = models.CharField(
        max_length=20,
        choices=Method.choices,
        default=Method.BASELINE,
        help_text="How readings are judged; new sensors start with DETECTION_METHOD.",
    )
    window = models.PositiveIntegerField(help_text="m: points per subsequence (144 = 24 h of 10-minute points).")
    warning_level = models.FloatField(help_text="Level (% of the baseline's max distance) from which it warns.")
    critical_level = models.FloatField(help_text="Level from which it is critical.")
    ok_run = models.PositiveIntegerField(
        help_text="An anomaly closes after this many consecutive ok readings (hysteresis)."
    )
    cooldown_seconds = models.PositiveIntegerField(
        help_text="A new alarm this soon after an anomaly closed joins it again (no flapping)."
    )
    silence_seconds = models.PositiveIntegerField(
        help_text="With no reading for this long, the sensor's state becomes not_available."
    )
    baseline = models.ForeignKey(
        Baseline,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the default seed baseline.",
    )
    feedback_enabled = models.BooleanField(default=False)
    feedback_baseline = models.ForeignKey(
        Baseline, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    last_selection_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_augmentation_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "detector settings"
        constraints = [
            models.CheckConstraint(condition=Q(window__gte=4), name="detection_settings_window_min"),
            models.CheckConstraint(
                condition=Q(critical_level__gte=models.F("warning_level")), name="detection_settings_levels_order"
            ),
        ]

    def __str__(self) -> str:
        return f"detector of {self.sensor_id}"

    @classmethod
    def defaults(cls) -> dict:
        """The DETECTION_* defaults a sensor's settings start from."""
        method = settings.DETECTION_METHOD
        return {
            "method": method,
            "window": settings.DETECTION_DISCORD_WINDOW if method == Method.DISCORD else settings.DETECTION_WINDOW,
            "warning_level": settings.DETECTION_WARNING_LEVEL,
            "critical_level": settings.DETECTION_CRITICAL_LEVEL,
            "ok_run": settings.DETECTION_OK_RUN,
            "cooldown_seconds": settings.DETECTION_COOLDOWN_SECONDS,
            "silence_seconds": settings.DETECTION_SILENCE_SECONDS,
        }

    def active_baseline_id(self) -> int | None:
        """The baseline detections use now: the feedback baseline in feedback mode, else the chosen one."""
        if self.feedback_enabled and self.feedback_baseline_id:
            return self.feedback_baseline_id
        return self.baseline_id


class DetectorState(models.Model):
    """What a sensor's detector needs to continue anywhere: written only by the detection service.

    `method` says which detector the arrays belong to. `baseline`: `values` are the sensor's values in the
    detector's series since its last restart (the replayed m included); rebuilding the stumpy object from the
    baseline and replaying them gives exactly the uninterrupted detector. `discord`: `method_state` is the whole
    state of a `discord.DiscordDetector`, one fixed-size float64 vector laid out by that class.
    """

    class SensorState(models.TextChoices):
        OK = "ok", "OK"
        CRITICAL = "critical", "Critical"
        NOT_AVAILABLE = "not_available", "Not available"

    sensor = models.OneToOneField(Sensor, on_delete=models.CASCADE, primary_key=True, related_name="detector_state")
    baseline = models.ForeignKey(Baseline, on_delete=models.SET_NULL, null=True, related_name="+")
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.BASELINE)
    window = models.PositiveIntegerField()
    values = models.BinaryField(default=b"", help_text="float64, little-endian")
    method_state = models.BinaryField(
        default=b"", help_text="discord: the detector's whole state, float64, little-endian (its own layout)"
    )
    fed = models.PositiveBigIntegerField(default=0, help_text="Readings detected since the state was created.")
    last_timestamp = models.DateTimeField(null=True)
    state = models.CharField(max_length=20, choices=SensorState.choices, default=SensorState.OK)
    anomaly = models.ForeignKey("Anomaly", on_delete=models.SET_NULL, null=True, related_name="+")
    ok_streak = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=0, help_text="Changes (at random) whenever `values` do.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"state of {self.sensor_id}"


class Detection(models.Model):
    """The detector's verdict on one reading: its level (% of the baseline's max distance) and raw distance."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="detections", db_index=False)
    timestamp = models.DateTimeField()
    level = models.FloatField(null=True)
    distance = models.FloatField(null=True, help_text="The newest matrix-profile value (the score).")
    status = models.CharField(max_length=10, choices=Status.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sensor", "timestamp"], name="detection_detection_unique_sensor_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} @ {self.timestamp:%Y-%m-%d %H:%M:%S%z}: {self.status}"


class Anomaly(models.Model):
    """Consecutive warning/critical readings of one sensor, and what operators decided about them.

    `closed_at` is set when the alarm itself ended (after `ok_run` ok readings); the status is the operators'
    lifecycle: open → acknowledged → resolved or external cause (open may go straight to either).
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        EXTERNAL_CAUSE = "external_cause", "External cause"

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="anomalies")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(help_text="The last warning/critical reading so far.")
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When the alarm ended (empty: still on).")
    peak_level = models.FloatField()
    peak_at = models.DateTimeField()
    peak_status = models.CharField(max_length=10, choices=Status.choices)
    flagged = models.PositiveIntegerField(default=0, help_text="Warning/critical readings in it.")
    status = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "anomalies"
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["sensor", "-started_at"], name="detection_anomaly_sensor"),
            models.Index(fields=["status", "-started_at"], name="detection_anomaly_status"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} from {self.started_at:%Y-%m-%d %H:%M}: {self.status}"


class SensorEvent(models.Model):
    """A change of a sensor's state (critical, ok, not_available); never repeated while the state holds."""

    class Kind(models.TextChoices):
        CRITICAL = "critical", "Critical"
        OK = "ok", "OK"
        NOT_AVAILABLE = "not_available", "Not available"

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField(help_text="The reading (or the moment of silence) that changed the state.")
    level = models.FloatField(null=True, blank=True)
    anomaly = models.ForeignKey(Anomaly, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["sensor", "-created_at"], name="detection_sensorevent_sensor")]

    def __str__(self) -> str:
        return f"{self.sensor_id}: {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class SystemEvent(models.Model):
    """What a job reports to operators: `alert_critical`, `alert_success` or `info`."""

    class Kind(models.TextChoices):
        ALERT_CRITICAL = "alert_critical", "Critical alert"
        ALERT_SUCCESS = "alert_success", "Success"
        INFO = "info", "Info"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    job = models.CharField(max_length=100, blank=True, help_text="The job that reported it.")
    sensor = models.ForeignKey(Sensor, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message = models.CharField(max_length=1000)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at"], name="detection_systemevent_created")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class JobRun(models.Model):
    """One run of a detection job (baseline selection or augmentation): when, how it ended, what it did."""

    class Job(models.TextChoices):
        SELECT_BASELINES = "select_baselines", "Baseline selection"
        AUGMENT_BASELINES = "augment_baselines", "Baseline augmentation"

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    job = models.CharField(max_length=30, choices=Job.choices)
    task_id = models.CharField(max_length=255, blank=True, help_text="The Celery task id (empty from a command).")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    sensors = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["job", "-started_at"], name="detection_jobrun_job")]

    def __str__(self) -> str:
        return f"{self.job} at {self.started_at:%Y-%m-%d %H:%M}: {self.outcome}"
