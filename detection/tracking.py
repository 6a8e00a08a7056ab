"""Anomaly and sensor-state tracking of one sensor, reading by reading: a state machine without a database.

It changes the objects it is given and lists the state changes to record, nothing else: the detection batch
(`detection.services.detect`) hands it `DetectorState` and `Anomaly` rows and writes what changed; the tests
hand it the plain `SensorTrack` and `Extent` below. Only the models' vocabulary is used (`Status`, the sensor
states, the anomaly statuses): no query, no row made.

An anomaly gathers consecutive warning/critical readings; it closes after `ok_run` ok readings (hysteresis).
A new alarm joins the last anomaly while that is still on, or within `cooldown_seconds` of its closing if
operators have not resolved it. The sensor's state (ok, critical, not_available) changes, and an event is
recorded, only when a critical reading arrives in another state, when a critical anomaly closes, when a
silent sensor sends again, or when a sensor falls silent.

Transitions, one reading at a time, rows in this order (`undefined` and `late` readings meet only "any reading"):

| input             | condition                         | anomaly                | sensor state → (event text)     |
|-------------------|-----------------------------------|------------------------|---------------------------------|
| warning, critical | no anomaly; or the last one is    | opened (`opened` + 1)  |                                 |
|                   | closed and resolved, or closed    |                        |                                 |
|                   | beyond the cool-down              |                        |                                 |
| warning, critical | otherwise                         | joined: extended,      |                                 |
|                   |                                   | reopened, peak raised  |                                 |
| warning, critical | always                            | ok streak back to 0    |                                 |
| critical          | sensor state is not critical      |                        | critical ("critical at level    |
|                   |                                   |                        | {level} %")                     |
| ok                | anomaly not closed                | ok streak + 1          |                                 |
| ok                | ... and the streak reaches ok_run | closed at this reading | ok, if it was critical ("alarm  |
|                   |                                   |                        | over after {n} ok readings")    |
| any reading       | sensor state is not_available     |                        | ok ("readings again")           |
| `silence()`       | sensor state is not not_available |                        | not_available ("no reading      |
|                   |                                   |                        | since {time}")                  |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detection.models import FLAGGED, Anomaly, DetectorState, Status

SensorState = DetectorState.SensorState
AnomalyStatus = Anomaly.State
JOINABLE = (AnomalyStatus.OPEN, AnomalyStatus.ACKNOWLEDGED)  # what operators have not resolved
ANOMALY_FIELDS = ["ended_at", "closed_at", "peak_level", "peak_at", "peak_status", "flagged"]  # what tracking changes


@dataclass
class Extent:
    """An anomaly as tracking reads and changes it (the same attributes as an `Anomaly` row)."""

    started_at: datetime
    ended_at: datetime
    peak_level: float
    peak_at: datetime
    peak_status: str
    flagged: int = 0
    closed_at: datetime | None = None
    status: str = AnomalyStatus.OPEN


@dataclass
class SensorTrack:
    """A sensor as tracking reads and changes it (the same attributes as a `DetectorState` row)."""

    state: str = SensorState.OK
    anomaly: Any = None
    ok_streak: int = 0


@dataclass(frozen=True)
class Change:
    """A change of the sensor's state, what a `SensorEvent` records (`text` without the sensor's key)."""

    kind: str
    at: datetime
    level: float | None
    anomaly: Any
    text: str


@dataclass
class Tracker:
    """Tracks one sensor (`sensor`: a `DetectorState` or a `SensorTrack`) over its readings, in time order.

    `new_anomaly(**fields)` makes an anomaly (the batch: an unsaved `Anomaly` of the sensor). After the readings,
    `changed` holds the anomalies it opened or changed (by `id()`: a new one has no primary key yet), `changes`
    the state changes to record, and `opened` how many anomalies it opened.
    """

    sensor: Any
    ok_run: int
    cooldown_seconds: int
    new_anomaly: Callable[..., Any] = Extent
    opened: int = 0
    changed: dict[int, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def track(self, timestamp: datetime, level: float | None, status: str) -> None:
        """One reading's detection (`level` None where undefined or late)."""
        sensor = self.sensor
        if status in FLAGGED:
            if level is None:
                raise ValueError("a flagged detection has a level")
            self._flagged(timestamp, level, status)
        elif status == Status.OK:
            anomaly = sensor.anomaly
            if anomaly is not None and anomaly.closed_at is None:
                sensor.ok_streak += 1
                if sensor.ok_streak >= self.ok_run:
                    anomaly.closed_at = timestamp
                    self.changed[id(anomaly)] = anomaly
                    if sensor.state == SensorState.CRITICAL:
                        self._change(SensorState.OK, timestamp, level, "alarm over after {n} ok readings", anomaly)
        if sensor.state == SensorState.NOT_AVAILABLE:
            self._change(SensorState.OK, timestamp, level, "readings again", None)

    def _flagged(self, timestamp: datetime, level: float, status: str) -> None:
        sensor = self.sensor
        sensor.ok_streak = 0
        anomaly = sensor.anomaly
        if anomaly is None or not self._joins(anomaly, timestamp):
            anomaly = self.new_anomaly(
                started_at=timestamp,
                ended_at=timestamp,
                peak_level=level,
                peak_at=timestamp,
                peak_status=status,
                flagged=0,
            )
            sensor.anomaly = anomaly
            self.opened += 1
        anomaly.closed_at = None
        anomaly.ended_at = timestamp
        anomaly.flagged += 1
        if level > anomaly.peak_level or anomaly.flagged == 1:
            anomaly.peak_level, anomaly.peak_at, anomaly.peak_status = level, timestamp, status
        self.changed[id(anomaly)] = anomaly
        if status == Status.CRITICAL and sensor.state != SensorState.CRITICAL:
            self._change(SensorState.CRITICAL, timestamp, level, "critical at level {level:.0f} %", anomaly)

    def _joins(self, anomaly: Any, timestamp: datetime) -> bool:
        closed_at: datetime | None = anomaly.closed_at
        if closed_at is None:
            return True
        if anomaly.status not in JOINABLE:
            return False
        return timestamp - closed_at <= timedelta(seconds=self.cooldown_seconds)

    def _change(self, to: str, timestamp: datetime, level: float | None, message: str, anomaly: Any) -> None:
        self.sensor.state = to
        text = message.format(level=level or 0, n=self.ok_run)
        self.changes.append(Change(kind=to, at=timestamp, level=level, anomaly=anomaly, text=text))


def silence(sensor: Any, *, at: datetime, latest: datetime) -> Change | None:
    """A sensor whose last reading (`latest`) is too old becomes not_available (its values, and a detector kept
    in memory, stay valid); None when it already is."""
    if sensor.state == SensorState.NOT_AVAILABLE:
        return None
    sensor.state = SensorState.NOT_AVAILABLE
    return Change(
        kind=SensorState.NOT_AVAILABLE,
        at=at,
        level=None,
        anomaly=None,
        text=f"no reading since {latest:%Y-%m-%d %H:%M:%S %Z}",
    )
