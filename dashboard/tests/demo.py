"""Realistic demo data for the dashboard's tests and screenshots: three platforms, eight sensors with 24 hours of
10-minute readings stored through the ingestion service, detections in every state, a silent sensor, anomalies,
sensor events and system events."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from detection.models import Anomaly, Detection, SensorEvent, Status, SystemEvent
from detection.services.events import system_event_emit
from sensors.ingest import readings_ingest
from sensors.models import Platform, Sensor, SensorKind, Transport

STEP = timedelta(minutes=10)


@dataclass(frozen=True)
class DemoSensor:
    key: str
    name: str
    platform: str | None
    kind: str
    unit: str
    mean: float
    amplitude: float
    status: str | None  # the latest detection's status (None: never detected)
    level: float | None = None
    silent_hours: float = 0  # no reading for the last this many hours
    spike: float = 0  # added over the last hour


SENSORS = [
    DemoSensor("alpha-temperature", "Deck temperature", "alpha", SensorKind.TEMPERATURE, "°C", 14, 4, Status.OK, 38),
    DemoSensor(
        "alpha-methane", "Methane, module 2", "alpha", SensorKind.GAS, "ppm", 2.1, 0.3, Status.CRITICAL, 246, spike=6
    ),
    DemoSensor(
        "alpha-pressure", "Separator pressure", "alpha", SensorKind.PRESSURE, "bar", 31, 1.5, Status.WARNING, 141
    ),
    DemoSensor("bravo-flow", "Export flow", "bravo", SensorKind.FLOW, "m³/h", 420, 60, Status.OK, 22),
    DemoSensor("bravo-level", "Tank level", "bravo", SensorKind.LEVEL, "m", 7.5, 1.2, None),
    DemoSensor(
        "bravo-humidity",
        "Control room humidity",
        "bravo",
        SensorKind.HUMIDITY,
        "%",
        45,
        6,
        Status.OK,
        30,
        silent_hours=3,
    ),
    DemoSensor("lab-wind", "Mast wind speed", "lab", SensorKind.WIND, "m/s", 8, 3, Status.UNDEFINED),
    DemoSensor("lab-temperature", "Lab temperature", None, SensorKind.TEMPERATURE, "°C", 21, 1, Status.OK, 12),
]
PLATFORMS = {"alpha": "North Sea Alpha", "bravo": "Baltic Bravo", "lab": "Test lab"}


def demo_value(spec: DemoSensor, at: datetime, index: int) -> float:
    """A daily cycle with a little deterministic noise, and the spike of the last hour."""
    hours = at.hour + at.minute / 60
    noise = math.sin(index * 12.9898) * 0.08 * spec.amplitude
    value = spec.mean + spec.amplitude * math.sin((hours - 9) / 24 * 2 * math.pi) + noise
    return round(value, 3)


def demo_seed(*, now: datetime | None = None) -> dict[str, Sensor]:
    """Store the demo data ending at `now` (default: the current time); returns the sensors by key."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    platforms = {
        slug: Platform.objects.get_or_create(slug=slug, defaults={"name": name})[0] for slug, name in PLATFORMS.items()
    }
    sensors: dict[str, Sensor] = {}
    for spec in SENSORS:
        sensors[spec.key] = Sensor.objects.create(
            key=spec.key,
            name=spec.name,
            platform=platforms[spec.platform] if spec.platform else None,
            kind=spec.kind,
            unit=spec.unit,
            detection_enabled=spec.status is not None,
        )
        last = now - timedelta(hours=spec.silent_hours)
        points = int((last - (now - timedelta(hours=24))) / STEP)
        messages = []
        for index in range(points + 1):
            at = last - (points - index) * STEP
            value = demo_value(spec, at, index)
            if spec.spike and now - at <= timedelta(hours=1):
                value += spec.spike
            messages.append({"sensor": spec.key, "value": value, "timestamp": at.isoformat()})
        readings_ingest(messages=messages, transport=Transport.SIMULATOR, decoded=True)
        if spec.status is not None:
            Detection.objects.bulk_create(
                Detection(sensor=sensors[spec.key], timestamp=last - i * STEP, level=spec.level, status=spec.status)
                for i in range(6)
            )
    methane, pressure = sensors["alpha-methane"], sensors["alpha-pressure"]
    alarm = Anomaly.objects.create(
        sensor=methane,
        started_at=now - timedelta(minutes=50),
        ended_at=now,
        peak_level=246,
        peak_at=now - timedelta(minutes=20),
        peak_status=Status.CRITICAL,
        flagged=6,
    )
    Anomaly.objects.create(
        sensor=pressure,
        started_at=now - timedelta(hours=5),
        ended_at=now - timedelta(hours=4, minutes=30),
        closed_at=now - timedelta(hours=3, minutes=30),
        peak_level=141,
        peak_at=now - timedelta(hours=4, minutes=40),
        peak_status=Status.WARNING,
        flagged=3,
        status=Anomaly.State.ACKNOWLEDGED,
    )
    SensorEvent.objects.create(
        sensor=methane, kind=SensorEvent.Kind.CRITICAL, at=now - timedelta(minutes=40), level=246, anomaly=alarm,
        message="alpha-methane: critical at level 246 %",
    )  # fmt: skip
    SensorEvent.objects.create(
        sensor=sensors["bravo-humidity"], kind=SensorEvent.Kind.NOT_AVAILABLE, at=now - timedelta(hours=2),
        message="bravo-humidity: no reading since " + f"{now - timedelta(hours=3):%Y-%m-%d %H:%M:%S UTC}",
    )  # fmt: skip
    system_event_emit(
        kind=SystemEvent.Kind.ALERT_SUCCESS, job="select_baselines", message="Baseline selection: 6 sensors checked"
    )
    system_event_emit(kind=SystemEvent.Kind.INFO, job="fetch_rates", message="Rates fetched from ECB: 31 rows")
    system_event_emit(
        kind=SystemEvent.Kind.ALERT_CRITICAL,
        job="select_baselines",
        sensor=methane,
        message="alpha-methane: every seed baseline raised an alarm; kept the current one",
    )
    return sensors
