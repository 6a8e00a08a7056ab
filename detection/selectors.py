"""Reads of the detection app: lists for the API, pages and live-stream history, written and tested once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Max, QuerySet
from django.utils import timezone

from detection.filters import (
    AnomalyFilter,
    BaselineFilter,
    DetectionFilter,
    SensorEventFilter,
    SystemEventFilter,
    filtered,
)
from detection.models import Anomaly, Baseline, Detection, DetectorSettings, DetectorState, SensorEvent, SystemEvent
from sensors.models import Sensor
from sensors.selectors import BUCKETS, EpochBin

# --- API and pages ------------------------------------------------------------------------------------------------


def detection_list(*, sensor: Sensor, filters: Mapping[str, Any] | None = None) -> QuerySet[Detection]:
    """One sensor's detections, oldest first (as its readings), narrowed by `DetectionFilter`
    (`since`, `until`, `status`); bad filter values raise ApplicationError."""
    queryset = Detection.objects.filter(sensor=sensor).order_by("timestamp")
    return filtered(DetectionFilter, filters, queryset)


def anomaly_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[Anomaly]:
    """Anomalies, newest first, with their sensor and the operators who handled them joined; `AnomalyFilter`
    (`sensor`, `status`, `active`, `since`, `until`)."""
    queryset = Anomaly.objects.select_related("sensor", "acknowledged_by", "resolved_by").order_by("-started_at", "-id")
    return filtered(AnomalyFilter, filters, queryset)


def anomalies_overlapping(*, sensor: Sensor, start: datetime, end: datetime) -> QuerySet[Anomaly]:
    """The sensor's anomalies with any part in [start, end) (as `AnomalyFilter`'s `since`/`until`), oldest first:
    the bands a chart of that range shades."""
    return Anomaly.objects.filter(sensor=sensor, started_at__lt=end, ended_at__gte=start).order_by("started_at", "id")


def detection_levels(
    *, sensor: Sensor, start: datetime, end: datetime, bucket: str | None = None, limit: int | None = None
) -> list[tuple[datetime, float | None]]:
    """The sensor's detection levels in [start, end) as (time, level), oldest first: one per detection (the first
    `limit` of them), or with `bucket` (a fixed-length bucket of `sensors.selectors.BUCKETS`, aligned to the epoch
    as the bucketed readings are) the highest level of each bucket, so a chart of a long range shows every alarm
    however short. Undefined and late detections have no level (None)."""
    queryset = Detection.objects.filter(sensor=sensor, timestamp__gte=start, timestamp__lt=end)
    if bucket is None:
        rows = queryset.order_by("timestamp").values_list("timestamp", "level")
        return list(rows[:limit] if limit is not None else rows)
    seconds = BUCKETS.get(bucket)
    if seconds is None:
        raise ValueError(f"detection_levels takes a fixed-length bucket, not {bucket!r}")
    bucketed = (
        queryset.annotate(bucket=EpochBin("timestamp", seconds=seconds))
        .values("bucket")
        .annotate(level=Max("level"))
        .order_by("bucket")
        .values_list("bucket", "level")
    )
    return list(bucketed)


def anomaly_get(*, anomaly_id: int) -> Anomaly | None:
    return anomaly_list().filter(pk=anomaly_id).first()


def sensor_event_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[SensorEvent]:
    """Sensor events, newest first, with their sensor joined; `SensorEventFilter` (`sensor`, `kind`)."""
    queryset = SensorEvent.objects.select_related("sensor").order_by("-created_at", "-id")
    return filtered(SensorEventFilter, filters, queryset)


def system_event_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[SystemEvent]:
    """System events, newest first, with their sensor (if any) joined; `SystemEventFilter` (`kind`, `job`)."""
    queryset = SystemEvent.objects.select_related("sensor").order_by("-created_at", "-id")
    return filtered(SystemEventFilter, filters, queryset)


def baseline_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[Baseline]:
    """Baselines by name, without their values (a baseline holds thousands of points: only the detail loads
    them); `BaselineFilter` (`kind`, `sensor`)."""
    queryset = Baseline.objects.select_related("sensor").defer("values").order_by("name")
    return filtered(BaselineFilter, filters, queryset)


def baseline_get(*, baseline_id: int, with_values: bool = True) -> Baseline | None:
    queryset = Baseline.objects.select_related("sensor")
    if not with_values:
        queryset = queryset.defer("values")
    return queryset.filter(pk=baseline_id).first()


def detector_settings_get(*, sensor: Sensor) -> DetectorSettings:
    """The sensor's detector settings; before its first detection, unsaved ones with the defaults it will get (a
    read never writes)."""
    found = DetectorSettings.objects.filter(sensor=sensor).first()
    return found or DetectorSettings(sensor=sensor, **DetectorSettings.defaults())


def detector_state_get(*, sensor: Sensor) -> DetectorState | None:
    """The sensor's detector state (None before its first detection), without its stored values."""
    return DetectorState.objects.defer("values").filter(sensor=sensor).first()


DETECTION_STALL_SECONDS = 300


def detector_states_behind() -> QuerySet[DetectorState]:
    """Detected sensors with a reading newer than their last detection (the sweep's work; the health check's
    lag when it lasts)."""
    return DetectorState.objects.filter(
        sensor__detection_enabled=True, sensor__latest_timestamp__gt=F("last_timestamp")
    )


def detection_status(*, now: datetime | None = None) -> dict[str, Any]:
    """For the health check: how many sensors are detected, how many are behind (a newer reading than their last
    detection, and their detector untouched for DETECTION_STALL_SECONDS: no detect worker takes their tasks),
    and whether seed baselines are loaded. Three queries."""
    stale = (now or timezone.now()) - timedelta(seconds=DETECTION_STALL_SECONDS)
    counts = DetectorState.objects.filter(sensor__detection_enabled=True).aggregate(sensors=Count("pk"))
    counts["behind"] = detector_states_behind().filter(updated_at__lt=stale).count()
    return {**counts, "seeds": Baseline.objects.filter(kind=Baseline.Kind.SEED).count()}


# --- live-stream history ------------------------------------------------------------------------------------------


def detections_recent(*, sensor: Sensor, limit: int) -> list[Detection]:
    """The sensor's last `limit` detections by reading time, oldest first (the history of its detections
    socket). Served by the unique (sensor, timestamp) index, read backwards."""
    if limit <= 0:
        return []
    rows = list(
        Detection.objects.filter(sensor=sensor)
        .only("timestamp", "level", "distance", "status")
        .order_by("-timestamp")[:limit]
    )
    rows.reverse()
    return rows


def sensor_events_recent(*, sensor: Sensor, limit: int) -> list[SensorEvent]:
    """The sensor's last `limit` events, oldest first, in the order they were stored (by id, which is the order
    the live stream sends them in)."""
    if limit <= 0:
        return []
    rows = list(SensorEvent.objects.filter(sensor=sensor).order_by("-id")[:limit])
    rows.reverse()
    return rows


def system_events_recent(*, limit: int) -> list[SystemEvent]:
    """The last `limit` system events, oldest first, with their sensor (its key is part of each item)."""
    if limit <= 0:
        return []
    rows = list(SystemEvent.objects.select_related("sensor").order_by("-id")[:limit])
    rows.reverse()
    return rows
