"""Reads of the dashboard's pages that combine several apps: the data of a sensor page's chart.

A chart shows one range (`RANGES`, 1 h … 90 d) of one sensor: its readings, raw when the range holds at most
`RAW_MAX_POINTS` of them, else one average per bucket of the range's bucket (so that no range draws more than about
2,000 points and a long range is one aggregate query, not millions of rows); the detection levels on the same
times (the highest level of each bucket); and the anomalies that overlap the range, as bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detection.selectors import anomalies_overlapping, detection_levels
from sensors.models import Sensor
from sensors.selectors import BUCKETS, reading_list, readings_bucketed

# Range name → (span, bucket when the range holds more than RAW_MAX_POINTS readings). Each bucket keeps its range
# under ~1,500 points: 1 h / 1m = 60, 6 h / 1m = 360, 24 h / 1m = 1,440, 7 d / 10m = 1,008, 30 d / 30m = 1,440,
# 90 d / 2h = 1,080.
RANGES: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), "1m"),
    "6h": (timedelta(hours=6), "1m"),
    "24h": (timedelta(hours=24), "1m"),
    "7d": (timedelta(days=7), "10m"),
    "30d": (timedelta(days=30), "30m"),
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
