"""Running the sensor simulator: its sensors in the catalogue, the targets it writes to, and the paced run.

A target is where simulated readings go. `TARGETS` is the one place that names them: to add one, write a class
with `send(samples) -> SendResult` and `close()`, and register a factory here; the command offers every registered
name.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common.exceptions import ApplicationError
from sensors.ingest import naive_timezone, readings_ingest
from sensors.models import Platform, Sensor, Transport
from sensors.services.catalog import platform_save, sensor_save
from sensors.synthetic.fleet import Sample, SensorSpec, Simulation
from sensors.synthetic.signals import SECONDS_PER_HOUR

BACKFILL_BATCH = 5000  # readings per write while backfilling


# --- the catalogue ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatedCatalog:
    platform: Platform
    created_platform: bool
    created_sensors: list[str]
    foreign_sensors: list[str]  # simulator keys already taken by a sensor of another platform (left as they are)


@transaction.atomic
def simulated_sensors_ensure(*, platform_slug: str, sensors: Sequence[SensorSpec]) -> SimulatedCatalog:
    """The platform and the simulated sensors exist afterwards; what existed is left unchanged (idempotent)."""
    created_platform = False
    platform = Platform.objects.filter(slug=platform_slug).first()
    try:
        if platform is None:
            name = platform_slug.replace("-", " ").replace("_", " ").title()
            platform = platform_save(
                platform=Platform(slug=platform_slug, name=name, description="Simulated sensors (simulate_sensors).")
            )
            created_platform = True
        existing = {s.key: s for s in Sensor.objects.filter(key__in=[spec.key for spec in sensors])}
        created = []
        for spec in sensors:
            if spec.key in existing:
                continue
            sensor_save(
                sensor=Sensor(
                    key=spec.key,
                    name=f"Simulated {spec.kind} {spec.key.rsplit('-', 1)[-1]}",
                    platform=platform,
                    kind=spec.kind,
                    unit=spec.profile.unit,
                )
            )
            created.append(spec.key)
    except ValidationError as exc:
        raise ApplicationError(f"Cannot create the simulated sensors: {'; '.join(exc.messages)}") from exc
    foreign = sorted(key for key, sensor in existing.items() if sensor.platform_id != platform.pk)
    return SimulatedCatalog(platform, created_platform, created, foreign)


# --- targets ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SendResult:
    """What one write did. The counts a target cannot know (pub/sub cannot see the store) stay None."""

    sent: int = 0
    stored: int | None = None
    duplicates: int | None = None
    rejected: int | None = None
    unheard: int | None = None  # pub/sub: messages no subscriber received


@dataclass(frozen=True, slots=True)
class TargetOptions:
    redis_url: str = ""
    mqtt_url: str = ""


class Target(Protocol):
    name: str

    def send(self, samples: Sequence[Sample]) -> SendResult: ...

    def close(self) -> None: ...


class ServiceTarget:
    """Straight into the ingestion service: one `readings_ingest` call per write."""

    name = "service"

    def __init__(self, options: TargetOptions) -> None:
        self.options = options

    def send(self, samples: Sequence[Sample]) -> SendResult:
        messages = [{"sensor": s.sensor, "value": s.value, "timestamp": s.timestamp.isoformat()} for s in samples]
        result = readings_ingest(messages=messages, transport=Transport.SIMULATOR, decoded=True)
        return SendResult(
            sent=len(samples), stored=result.stored, duplicates=result.duplicates, rejected=result.rejected
        )

    def close(self) -> None:
        pass


class _RedisTarget:
    """A device talking to Redis: one client, checked at open."""

    name: str

    def __init__(self, options: TargetOptions) -> None:
        if not options.redis_url:
            raise ApplicationError(f"The {self.name} target needs Redis: set REDIS_URL or pass --redis-url.")
        self.zone = naive_timezone()
        self.client = redis.Redis.from_url(options.redis_url, socket_connect_timeout=5)
        try:
            self.client.ping()
        except redis.RedisError as exc:
            self.client.close()
            raise ApplicationError(f"Redis at {redacted_url(options.redis_url)} is not reachable: {exc}") from exc

    def message(self, sample: Sample) -> str:
        stamp = sample.timestamp.astimezone(self.zone).replace(tzinfo=None).isoformat(sep=" ")
        return json.dumps({"sensor": sample.sensor, "value": sample.value, "timestamp": stamp})

    def close(self) -> None:
        self.client.close()


class PubSubTarget(_RedisTarget):
    """`PUBLISH <SENSORS_PUBSUB_CHANNEL>` in the old sensor processor's contract, one pipeline per write:
    `{"sensor": ..., "value": ..., "timestamp": "YYYY-MM-DD HH:MM:SS[.ffffff]"}`, the timestamp naive in
    `SENSORS_NAIVE_TIMEZONE` (the zone the consumer reads naive timestamps in)."""

    name = "pubsub"

    def __init__(self, options: TargetOptions) -> None:
        super().__init__(options)
        self.channel = settings.SENSORS_PUBSUB_CHANNEL

    def send(self, samples: Sequence[Sample]) -> SendResult:
        pipe = self.client.pipeline(transaction=False)
        for sample in samples:
            pipe.publish(self.channel, self.message(sample))
        try:
            receivers = pipe.execute()
        except redis.RedisError as exc:
            raise ApplicationError(f"Publishing to Redis failed: {exc}") from exc
        return SendResult(sent=len(samples), unheard=sum(1 for count in receivers if count == 0))


class StreamTarget(_RedisTarget):
    """`XADD <SENSORS_STREAM_KEY> * data <the same JSON>`, one pipeline per write: the no-loss path, read by
    `consume_readings --source stream` whenever it runs."""

    name = "stream"

    def __init__(self, options: TargetOptions) -> None:
        super().__init__(options)
        self.stream = settings.SENSORS_STREAM_KEY

    def send(self, samples: Sequence[Sample]) -> SendResult:
        pipe = self.client.pipeline(transaction=False)
        for sample in samples:
            pipe.xadd(self.stream, {"data": self.message(sample)})
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise ApplicationError(f"Adding to the Redis stream failed: {exc}") from exc
        return SendResult(sent=len(samples))


class MqttTarget:
    """Devices on MQTT: `{"value": ..., "timestamp": "<ISO 8601 with offset>"}` on `<SENSORS_MQTT_TOPIC_PREFIX>/<key>`
    at QoS 1; a write returns once the broker has acknowledged every message of it."""

    name = "mqtt"
    PUBLISH_TIMEOUT = 30.0  # seconds a write waits for the broker's acknowledgements

    def __init__(self, options: TargetOptions) -> None:
        from sensors.transports.mqtt import broker_client

        if not options.mqtt_url:
            raise ApplicationError("The mqtt target needs a broker: set MQTT_URL or pass --mqtt-url.")
        self.prefix = settings.SENSORS_MQTT_TOPIC_PREFIX.strip("/")
        try:
            self.client = broker_client(options.mqtt_url)
        except ValueError as exc:
            raise ApplicationError(str(exc)) from exc
        except OSError as exc:
            raise ApplicationError(
                f"The MQTT broker at {redacted_url(options.mqtt_url)} is not reachable: {exc}"
            ) from exc

    def send(self, samples: Sequence[Sample]) -> SendResult:
        infos = [
            self.client.publish(
                f"{self.prefix}/{s.sensor}", json.dumps({"value": s.value, "timestamp": s.timestamp.isoformat()}), qos=1
            )
            for s in samples
        ]
        deadline = time.monotonic() + self.PUBLISH_TIMEOUT
        for info in infos:
            try:
                info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.001))
            except (RuntimeError, ValueError) as exc:  # paho: the message could not be queued (connection lost)
                raise ApplicationError(f"Publishing to MQTT failed: {exc}") from exc
            if not info.is_published():
                raise ApplicationError(f"The MQTT broker did not acknowledge within {self.PUBLISH_TIMEOUT:g} s.")
        return SendResult(sent=len(samples))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


TARGETS: dict[str, Callable[[TargetOptions], Target]] = {
    "service": ServiceTarget,
    "pubsub": PubSubTarget,
    "stream": StreamTarget,
    "mqtt": MqttTarget,
}


def default_target() -> str:
    """Embedded mode (no Redis) writes through the service; with Redis the simulator plays a device on the
    no-loss stream."""
    return "stream" if settings.REDIS_URL else "service"


def target_open(name: str, *, options: TargetOptions) -> Target:
    try:
        factory = TARGETS[name]
    except KeyError:
        raise ApplicationError(f"Unknown target {name!r}; choose one of {', '.join(TARGETS)}.") from None
    return factory(options)


def redacted_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# --- the run ----------------------------------------------------------------------------------------------------


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


# (description, total or None, unit) → a progress bar; tqdm fits.
ProgressFactory = Callable[[str, int | None, str], Progress]


@dataclass(slots=True)
class SimulationReport:
    """Counts of a run; `stored`, `duplicates`, `rejected` and `unheard` are None when the target cannot tell."""

    target: str
    sensors: int
    seed: int
    backfill_readings: int = 0
    live_ticks: int = 0
    sent: int = 0
    stored: int | None = None
    duplicates: int | None = None
    rejected: int | None = None
    unheard: int | None = None
    interrupted: bool = False
    anomalies: dict[str, int] = field(default_factory=dict)

    def add(self, result: SendResult) -> None:
        self.sent += result.sent
        for name in ("stored", "duplicates", "rejected", "unheard"):
            value = getattr(result, name)
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + value)


def simulation_run(
    *,
    simulation: Simulation,
    target: Target,
    rate: float,
    duration: float = 0,
    backfill_hours: float = 0,
    interval_step: float | None = None,
    backfill_only: bool = False,
    stop: threading.Event | None = None,
    progress: ProgressFactory | None = None,
    batch_size: int = BACKFILL_BATCH,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] | None = None,
) -> SimulationReport:
    """Write `backfill_hours` of history as fast as the target takes it, then readings on the wall clock.

    Backfilled timestamps lie on the `interval_step` grid (600 s gives :00, :10, ...) and end at the last grid
    point before the first live tick;
    live ticks lie on the `1/rate` grid from the start onwards (the time the backfill took is caught up at once),
    and each tick sleeps until its own moment, so the pace never drifts. `duration` (seconds, 0 = until `stop`
    is set) counts from the start, backfill included; the backfill always completes. Live, each tick is one
    write of every sensor's reading.
    """
    stop = stop or threading.Event()
    interval = 1 / rate
    step = interval_step or interval
    started_mono, started = clock(), (now or timezone.now)()
    anchor = _grid_floor(started, interval)
    report = SimulationReport(target=target.name, sensors=len(simulation.sensors), seed=simulation.seed)

    count = int(backfill_hours * SECONDS_PER_HOUR / step + 1e-9)
    if count:
        last = _grid_floor(started, step)
        if last >= anchor:  # live tick 0 is at the anchor
            last -= timedelta(seconds=step)
        _backfill(simulation, target, report, last, step, count, batch_size, stop, progress)
    if not backfill_only and not stop.is_set():
        deadline = started_mono + duration if duration else math.inf
        anchor_mono = started_mono - (started - anchor).total_seconds()
        _live(simulation, target, report, anchor, anchor_mono, interval, deadline, stop, progress, clock)
    report.interrupted = stop.is_set()
    report.anomalies = simulation.anomaly_counts()
    return report


def _grid_floor(moment: datetime, interval: float) -> datetime:
    epoch = math.floor(moment.timestamp() / interval) * interval
    return datetime.fromtimestamp(round(epoch, 6), UTC)


def _backfill(
    simulation: Simulation,
    target: Target,
    report: SimulationReport,
    last: datetime,
    step: float,
    count: int,
    batch_size: int,
    stop: threading.Event,
    progress: ProgressFactory | None,
) -> None:
    bar = progress("backfill", count * report.sensors, "readings") if progress else None
    start = last - timedelta(seconds=(count - 1) * step)
    batch: list[Sample] = []
    try:
        for samples in simulation.run(start=start, step=step, count=count):
            batch.extend(samples)
            if len(batch) >= batch_size:
                _write(target, report, batch, bar)
                batch = []
                if stop.is_set():
                    break
        if batch:
            _write(target, report, batch, bar)
    finally:
        if bar is not None:
            bar.close()
    report.backfill_readings = report.sent


def _live(
    simulation: Simulation,
    target: Target,
    report: SimulationReport,
    anchor: datetime,
    anchor_mono: float,
    interval: float,
    deadline: float,
    stop: threading.Event,
    progress: ProgressFactory | None,
    clock: Callable[[], float],
) -> None:
    bar = progress("live", None, "ticks") if progress else None
    tick = 0
    try:
        while not stop.is_set():
            due = anchor_mono + tick * interval
            if due > deadline:
                break
            wait = due - clock()
            if wait > 0 and stop.wait(wait):
                break
            _write(target, report, simulation.tick(anchor + timedelta(seconds=tick * interval)), None)
            report.live_ticks += 1
            if bar is not None:
                bar.update(1)
            tick += 1
    finally:
        if bar is not None:
            bar.close()


def _write(target: Target, report: SimulationReport, samples: list[Sample], bar: Progress | None) -> None:
    report.add(target.send(samples))
    if bar is not None:
        bar.update(len(samples))
