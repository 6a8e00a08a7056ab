"""Reads behind the dashboard pages: the overview (every sensor with its latest value, state and a 24-hour
sparkline) and the events feed (sensor and system events in one list), each in a fixed number of queries whatever
the number of sensors (tested with `django_assert_num_queries`).

A sensor's **state** on the overview (README, "Dashboard"), first rule that applies:

1. `silent`: it has no reading, or its latest reading is older than DASHBOARD_SILENT_SECONDS;
2. `ok`, `warning`, `critical`: the status of its latest detection (the reading's level against the sensor's
   warning and critical levels, `detection.models.Status`); `late` detections are skipped;
3. `undefined`: no detection yet (detection disabled, not yet run, or still learning: its first readings are
   `undefined`).

The sensor page's chart:

A chart shows one range (`RANGES`, 1 h … 90 d) of one sensor: its readings, raw when the range holds at most
`RAW_MAX_POINTS` of them, else one average per bucket of the range's bucket (so that no range draws more than about
2,000 points and a long range is one aggregate query, not millions of rows); the detection levels on the same
times (the highest level of each bucket); and the anomalies that overlap the range, as bands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Case, CharField, Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from common.exceptions import ApplicationError
from detection.filters import SensorEventFilter, SystemEventFilter, filtered
from detection.models import Anomaly, Detection, SensorEvent, Status, SystemEvent
from detection.selectors import anomalies_overlapping, detection_levels
from sensors.filters import SensorFilter
from sensors.models import Platform, Reading, Sensor
from sensors.selectors import BUCKETS, EpochBin, reading_list, readings_bucketed

# Worst first: the order of the counts and of the state filter's choices.
STATES = ("critical", "warning", "silent", "undefined", "ok")
UNRESOLVED = (Anomaly.State.OPEN, Anomaly.State.ACKNOWLEDGED)
SPARKLINE_HOURS = 24
SPARKLINE_BUCKET_SECONDS = 1800  # 48 points over 24 h
SPARKLINE_WIDTH = 120
SPARKLINE_HEIGHT = 28


@dataclass(frozen=True, slots=True)
class Sparkline:
    """A server-drawn sparkline: SVG polylines (one per run of consecutive buckets, so a gap stays a gap)."""

    lines: list[str]
    low: float
    high: float
    width: int = SPARKLINE_WIDTH
    height: int = SPARKLINE_HEIGHT


@dataclass(slots=True)
class SensorRow:
    sensor: Sensor
    state: str
    level: float | None  # the latest detection's level (%)
    age: timedelta | None  # since the latest reading
    unresolved: int  # open or acknowledged anomalies
    sparkline: Sparkline | None = None


@dataclass(slots=True)
class PlatformGroup:
    platform: Platform | None  # None: sensors on no platform
    rows: list[SensorRow] = field(default_factory=list)


@dataclass(slots=True)
class Overview:
    groups: list[PlatformGroup]
    counts: dict[str, int]  # per state, over the sensors the platform/kind filters keep (before the state filter)
    anomalies: list[Anomaly]  # unresolved anomalies, open ones first, newest first
    shown: int
    now: datetime


def sensor_state(
    *, latest: datetime | None, detection_status: str | None, now: datetime, silent_seconds: int | None = None
) -> str:
    """The overview's state of one sensor (the rules in this module's docstring)."""
    silent = settings.DASHBOARD_SILENT_SECONDS if silent_seconds is None else silent_seconds
    if latest is None or (now - latest).total_seconds() > silent:
        return "silent"
    if detection_status in (Status.OK, Status.WARNING, Status.CRITICAL):
        return str(detection_status)
    return "undefined"


def overview_sensors(*, filters: Mapping[str, Any] | None = None) -> QuerySet[Sensor]:
    """Sensors (narrowed by the API's `SensorFilter`: platform, kind, active, installation) with their platform,
    the status and level of their latest detection and their count of unresolved anomalies, in one query.

    The latest detection is read backwards on the (sensor, timestamp) unique index, one short scan per sensor."""
    latest = Detection.objects.filter(sensor=OuterRef("pk")).exclude(status=Status.LATE).order_by("-timestamp")
    unresolved = (
        Anomaly.objects.filter(sensor=OuterRef("pk"), status__in=UNRESOLVED)
        .order_by()
        .values("sensor")
        .annotate(n=Count("pk"))
        .values("n")
    )
    queryset = (
        Sensor.objects.select_related("platform")
        .annotate(
            detection_status=Subquery(latest.values("status")[:1], output_field=CharField()),
            detection_level=Subquery(latest.values("level")[:1]),
            unresolved=Coalesce(Subquery(unresolved, output_field=IntegerField()), 0),
        )
        .order_by(F("platform__name").asc(nulls_last=True), "key")
    )
    return filtered(SensorFilter, filters, queryset)


def overview_annotations(
    sensors: QuerySet[Sensor],
) -> Iterator[tuple[Sensor, str | None, float | None, int]]:
    """Each sensor of `overview_sensors` with what it annotated: (sensor, detection status, level, unresolved)."""
    for sensor in sensors:
        annotated = vars(sensor)  # the annotations are plain attributes, unknown to the model's type
        yield sensor, annotated["detection_status"], annotated["detection_level"], annotated["unresolved"]


def sparklines(*, sensor_ids: list[int], now: datetime) -> dict[int, Sparkline]:
    """The half-hourly averages of the last 24 h of each sensor, drawn, in one grouped query (bucketed in the
    database as the readings API's `bucket=30m`). Sensors without readings in that time have none."""
    if not sensor_ids:
        return {}
    start = now - timedelta(hours=SPARKLINE_HOURS)
    rows = (
        Reading.objects.filter(sensor_id__in=sensor_ids, timestamp__gte=start, timestamp__lte=now)
        .annotate(bucket=EpochBin("timestamp", seconds=SPARKLINE_BUCKET_SECONDS))
        .values("sensor_id", "bucket")
        .annotate(value=Avg("value"))
        .order_by("sensor_id", "bucket")
        .values_list("sensor_id", "bucket", "value")
    )
    series: dict[int, list[tuple[datetime, float]]] = {}
    for sensor_id, bucket, value in rows:
        series.setdefault(sensor_id, []).append((bucket, value))
    return {sensor_id: sparkline_draw(points, start=start, end=now) for sensor_id, points in series.items()}


def sparkline_draw(points: list[tuple[datetime, float]], *, start: datetime, end: datetime) -> Sparkline:
    """Bucket averages (oldest first) as SVG polylines on [start, end); a missing bucket breaks the line."""
    values = [value for _, value in points]
    low, high = min(values), max(values)
    span = (end - start).total_seconds() or 1.0
    spread = (high - low) or 1.0
    pad = 2

    def xy(at: datetime, value: float) -> str:
        x = (at - start).total_seconds() / span * SPARKLINE_WIDTH
        y = SPARKLINE_HEIGHT - pad - (value - low) / spread * (SPARKLINE_HEIGHT - 2 * pad)
        if high == low:
            y = SPARKLINE_HEIGHT / 2
        return f"{max(0.0, min(x, SPARKLINE_WIDTH)):.1f},{y:.1f}"

    lines: list[list[str]] = []
    previous: datetime | None = None
    for at, value in points:
        if previous is None or (at - previous).total_seconds() > SPARKLINE_BUCKET_SECONDS:
            lines.append([])
        lines[-1].append(xy(at, value))
        previous = at
    # A lone point is drawn as a tiny segment so that it shows.
    drawn = [" ".join(line) if len(line) > 1 else f"{line[0]} {line[0]}" for line in lines]
    return Sparkline(lines=drawn, low=low, high=high)


def overview_get(
    *, filters: Mapping[str, Any] | None = None, state: str | None = None, now: datetime | None = None
) -> Overview:
    """Everything the overview shows, in three queries: the sensors (`overview_sensors`, platform and kind
    filters), their sparklines, and the unresolved anomalies of the sensors shown.

    `state` keeps only sensors in that state (one of `STATES`); the counts are taken before it, so that each
    state's count says how many a click on it would show. Within each platform, sensors with unresolved anomalies
    come first, then by key; platforms by name, sensors of no platform last."""
    if state is not None and state not in STATES:
        raise ApplicationError(
            "Invalid filter.", code="validation_error", fields={"state": [f"Use one of {', '.join(STATES)}."]}
        )
    now = now or timezone.now()
    rows = [
        SensorRow(
            sensor=sensor,
            state=sensor_state(latest=sensor.latest_timestamp, detection_status=detection_status, now=now),
            level=level,
            age=(now - sensor.latest_timestamp) if sensor.latest_timestamp else None,
            unresolved=unresolved,
        )
        for sensor, detection_status, level, unresolved in overview_annotations(overview_sensors(filters=filters))
    ]
    counts = Counter(row.state for row in rows)
    if state is not None:
        rows = [row for row in rows if row.state == state]
    lines = sparklines(sensor_ids=[row.sensor.pk for row in rows], now=now)
    groups: dict[int | None, PlatformGroup] = {}
    for row in rows:
        row.sparkline = lines.get(row.sensor.pk)
        group = groups.setdefault(row.sensor.platform_id, PlatformGroup(platform=row.sensor.platform))
        group.rows.append(row)
    for group in groups.values():
        group.rows.sort(key=lambda row: (row.unresolved == 0, row.sensor.key))
    shown_ids = [row.sensor.pk for row in rows]
    anomalies = (
        list(
            Anomaly.objects.select_related("sensor")
            .filter(status__in=UNRESOLVED, sensor_id__in=shown_ids)
            .order_by(Case(When(status=Anomaly.State.OPEN, then=0), default=1), "-started_at", "-id")[:50]
        )
        if shown_ids
        else []
    )
    return Overview(
        groups=list(groups.values()),
        counts={name: counts.get(name, 0) for name in STATES},
        anomalies=anomalies,
        shown=len(rows),
        now=now,
    )


# --- events -------------------------------------------------------------------------------------------------------

EVENT_SOURCES = ("sensor", "system")
# `event_at`: the reading (or silence) that changed a sensor's state, or when a job reported; `stored_at`: when the
# event was stored (the feed's order).
EVENT_FIELDS = ("source", "event_id", "event_kind", "sensor_key", "event_message", "event_at", "stored_at")


def event_feed(*, filters: Mapping[str, Any] | None = None) -> QuerySet[Any]:
    """Sensor events and system events in one list, newest first (by when they were stored), as dicts of
    `EVENT_FIELDS`: one SQL UNION, so that a page of it is one query and its count another.

    Filters: `source` (`sensor` or `system`), `kind` (the API's comma list, either vocabulary), `sensor` (a key:
    sensor events of it and system events naming it). Unknown values raise ApplicationError naming the field."""
    filters = dict(filters or {})
    source = filters.pop("source", "") or ""
    if source and source not in EVENT_SOURCES:
        raise ApplicationError(
            "Invalid filter.", code="validation_error", fields={"source": [f"Use one of {', '.join(EVENT_SOURCES)}."]}
        )
    kinds = [kind for kind in str(filters.get("kind", "") or "").split(",") if kind]
    sensor_kinds = set(SensorEvent.Kind.values)
    system_kinds = set(SystemEvent.Kind.values)
    unknown = [kind for kind in kinds if kind not in sensor_kinds | system_kinds]
    if unknown:
        raise ApplicationError(
            "Invalid filter.",
            code="validation_error",
            fields={"kind": [f"Unknown kind {unknown[0]!r}; use {', '.join(sorted(sensor_kinds | system_kinds))}."]},
        )
    sensor_key = str(filters.get("sensor", "") or "")
    parts: list[QuerySet[Any]] = []
    if source in ("", "sensor") and (not kinds or sensor_kinds & set(kinds)):
        wanted = {"kind": ",".join(k for k in kinds if k in sensor_kinds), "sensor": sensor_key}
        sensor_events = filtered(SensorEventFilter, {k: v for k, v in wanted.items() if v}, SensorEvent.objects.all())
        parts.append(
            sensor_events.annotate(
                source=Value("sensor", output_field=CharField()),
                event_id=F("id"),
                event_kind=F("kind"),
                sensor_key=F("sensor__key"),
                event_message=F("message"),
                event_at=F("at"),
                stored_at=F("created_at"),
            )
            .order_by()
            .values(*EVENT_FIELDS)
        )
    if source in ("", "system") and (not kinds or system_kinds & set(kinds)):
        wanted = {"kind": ",".join(k for k in kinds if k in system_kinds)}
        system_events = filtered(SystemEventFilter, {k: v for k, v in wanted.items() if v}, SystemEvent.objects.all())
        if sensor_key:
            system_events = system_events.filter(sensor__key=sensor_key)
        parts.append(
            system_events.annotate(
                source=Value("system", output_field=CharField()),
                event_id=F("id"),
                event_kind=F("kind"),
                sensor_key=F("sensor__key"),
                event_message=F("message"),
                event_at=F("created_at"),
                stored_at=F("created_at"),
            )
            .order_by()
            .values(*EVENT_FIELDS)
        )
    if not parts:
        return SensorEvent.objects.none().values("id")
    first, *rest = parts
    combined = first.union(*rest, all=True) if rest else first
    return combined.order_by("-stored_at", "-event_id")


# Range name → (span, bucket when the range holds more than RAW_MAX_POINTS readings). Each bucket keeps its range
# under ~1,500 points: 1 h / 1m = 60, 6 h / 1m = 360, 24 h / 1m = 1,440, 7 d / 10m = 1,008, 30 d / 1h = 720,
# 90 d / 2h = 1,080. The long ranges take whole-hour buckets, which the bucketed query reads from the hourly roll-ups
# instead of the raw readings (sensors/selectors.py), so a month of a 1 Hz sensor is hundreds of rows, not millions.
RANGES: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), "1m"),
    "6h": (timedelta(hours=6), "1m"),
    "24h": (timedelta(hours=24), "1m"),
    "7d": (timedelta(days=7), "10m"),
    "30d": (timedelta(days=30), "1h"),
    "90d": (timedelta(days=90), "2h"),
}
DEFAULT_RANGE = "1h"
# Raw readings up to this many in the range (an hour of a 1 Hz sensor is 3,600; a week of 10-minute points 1,008):
# uPlot draws a few thousand points in a few milliseconds, and raw points line up exactly with their detections.
RAW_MAX_POINTS = 4_000


@dataclass(frozen=True, slots=True)
class ChartWindow:
    """The range a chart shows: [start, end), `live` when it reaches the present (new readings append to it)."""

    name: str
    start: datetime
    end: datetime
    live: bool


def chart_window(*, name: str, now: datetime, at: datetime | None = None) -> ChartWindow:
    """The range `name` (a key of `RANGES`) ending now, or centred on `at`. A range that reaches past now is live."""
    span = RANGES[name][0]
    if at is None:
        return ChartWindow(name=name, start=now - span, end=now, live=True)
    start = at - span / 2
    end = start + span
    return ChartWindow(name=name, start=start, end=end, live=end >= now)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def sensor_chart(*, sensor: Sensor, window: ChartWindow, raw_max: int = RAW_MAX_POINTS) -> dict[str, Any]:
    """The chart of `sensor` over `window`, ready for JSON: times as Unix seconds in `x`, and on those times the
    readings (`values`) and detection levels (`levels`), None where one has no point. `bucket` is None for raw
    readings, else the bucket name and `bucket_seconds` its length; `anomalies` the bands to shade.

    Readings are read up to the sensor's latest reading as this function starts (`until`), so that the live
    stream's readings after it can be added to the last bucket exactly once (`last_count`: the readings already in
    the last bucket, for the running average). Four queries at most (readings, their count in the last bucket,
    detections, anomalies).
    """
    latest = sensor.latest_timestamp
    end = window.end
    if latest is not None and latest < end:
        end = latest + timedelta(microseconds=1)
    raw = list(reading_list(sensor=sensor, start=window.start, end=end)[: raw_max + 1])
    bucket: str | None = None
    last_count: int | None = None
    points: dict[float, list[float | None]] = {}
    if len(raw) <= raw_max:
        for row in raw:
            points[_epoch(row["timestamp"])] = [row["value"], None]
        levels = detection_levels(sensor=sensor, start=window.start, end=end, limit=raw_max + 1)
    else:
        bucket = RANGES[window.name][1]
        for item in readings_bucketed(sensor=sensor, bucket=bucket, start=window.start, end=end):
            points[_epoch(item.start)] = [None if item.value is None else float(item.value), None]
        if window.live and points:
            last_start = datetime.fromtimestamp(max(points), tz=window.start.tzinfo)
            counted = readings_bucketed(sensor=sensor, bucket=bucket, agg="count", start=last_start, end=end)
            last_count = int(counted[-1].value or 0) if counted else 0
        levels = detection_levels(sensor=sensor, start=window.start, end=end, bucket=bucket)
    for moment, level in levels:
        points.setdefault(_epoch(moment), [None, None])[1] = level
    xs = sorted(points)
    anomalies = [
        {
            "id": anomaly.pk,
            "start": _epoch(anomaly.started_at),
            "end": _epoch(anomaly.ended_at),
            "status": anomaly.status,
            "peak_status": anomaly.peak_status,
            "peak_level": anomaly.peak_level,
            "active": anomaly.closed_at is None,
        }
        for anomaly in anomalies_overlapping(sensor=sensor, start=window.start, end=window.end)
    ]
    return {
        "range": window.name,
        "start": _epoch(window.start),
        "end": _epoch(window.end),
        "span": (window.end - window.start).total_seconds(),
        "live": window.live,
        "bucket": bucket,
        "bucket_seconds": BUCKETS[bucket] if bucket else None,
        "until": _epoch(latest) if latest is not None else None,
        "last_count": last_count,
        "x": xs,
        "values": [points[x][0] for x in xs],
        "levels": [points[x][1] for x in xs],
        "anomalies": anomalies,
    }
