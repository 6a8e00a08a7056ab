"""The live simulator's sensors: a pure, seedable generator of every sensor's reading at an instant (no database,
no clock, no I/O).

Each simulated sensor's value at an instant is

    mean + offset + amplitude · cos(2π (hour − peak_hour − jitter) / 24)   daily cycle, in `zone`'s hours
    + drift                                                                 bounded random walk
    + noise                                                                 Gaussian, per reading
    + anomalies                                                             leaks, level shifts, spikes

with kind-specific constants in `PROFILES`. Anomalies are drawn at random and every one is reported as a labeled
window (`Simulation.labels()`), the ground truth that detection is scored against.

Guarantees:
- The same seed, sensors and timestamps give the same values and windows, whatever the pace they are asked at:
  one `Simulation` serves a backfill of simulated time and a live run on the wall clock alike.
- Each sensor draws from its own random streams (seeded by seed and key), and noise and drift never share a
  stream with the anomalies: adding sensors leaves the others unchanged, and the same seed with anomalies turned
  off gives exactly the anomaly-free series (what the tests compare against).
- Timestamps must increase per sensor; the drift and the anomaly chances scale with the time between them, so
  the series looks alike at 1 Hz and at a 10-minute cadence.

The streams are Python's `random`, not NumPy's: each is seeded by a string (seed, sensor key, stream name), and a
given seed keeps giving the series and labels it always gave.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from sensors.synthetic.anomalies import LEAK, LEVEL_SHIFT, SPIKE, chance, leak_deviation, signed
from sensors.synthetic.signals import SECONDS_PER_HOUR, daily_cosine, hour_of_day, reflect

ANOMALY_KINDS = (LEAK, SPIKE, LEVEL_SHIFT)


@dataclass(frozen=True, slots=True)
class KindProfile:
    """The constants of one sensor kind. Ranges are (low, high); leak magnitudes are signed (a leak cools the air
    and drops the pressure while the gas concentration rises); spike and shift signs are drawn at random."""

    kind: str
    unit: str
    mean: float
    amplitude: float
    peak_hour: float
    noise: float
    drift_limit: float
    leak: tuple[float, float]
    spike: tuple[float, float]
    shift: tuple[float, float]
    lower: float | None = None
    upper: float | None = None
    decimals: int = 2

    @property
    def drift_rate(self) -> float:
        """Standard deviation of the drift per √hour: the walk spans its limit in about half a day."""
        return self.drift_limit / math.sqrt(12)

    def normal_band(self) -> tuple[float, float]:
        """Where an anomaly-free reading falls (±4σ of noise, the whole cycle, drift and a sensor's offset)."""
        reach = self.amplitude * 1.5 + self.drift_limit + 4 * self.noise
        return self.mean - reach, self.mean + reach


# Gas is close to the leak service's "low" seed baseline (mean 23.92, variance 115; docs/detection.md, "Seeds"), so
# the detector's seed baselines fit the simulated gas sensors.
PROFILES: dict[str, KindProfile] = {
    profile.kind: profile
    for profile in (
        KindProfile(
            kind="gas",
            unit="ppm",
            mean=24.0,
            amplitude=10.0,
            peak_hour=14.0,
            noise=3.0,
            drift_limit=8.0,
            leak=(80.0, 250.0),
            spike=(40.0, 100.0),
            shift=(8.0, 15.0),
            lower=0.0,
        ),
        KindProfile(
            kind="temperature",
            unit="°C",
            mean=15.0,
            amplitude=6.0,
            peak_hour=15.0,
            noise=0.3,
            drift_limit=1.5,
            leak=(-6.0, -2.0),
            spike=(8.0, 15.0),
            shift=(3.0, 5.0),
        ),
        KindProfile(
            kind="pressure",
            unit="hPa",
            mean=1013.0,
            amplitude=1.5,
            peak_hour=10.0,
            noise=0.2,
            drift_limit=6.0,
            leak=(-12.0, -4.0),
            spike=(5.0, 10.0),
            shift=(2.0, 4.0),
        ),
        KindProfile(
            kind="humidity",
            unit="%",
            mean=70.0,
            amplitude=12.0,
            peak_hour=4.0,
            noise=1.0,
            drift_limit=4.0,
            leak=(-25.0, -10.0),
            spike=(15.0, 30.0),
            shift=(8.0, 12.0),
            lower=0.0,
            upper=100.0,
            decimals=1,
        ),
    )
}
# The order kinds are handed out in: with the default five sensors the demo has two gas sensors.
SIMULATED_KINDS = ("gas", "temperature", "pressure", "humidity")


@dataclass(frozen=True)  # no slots: the command reads the defaults off the class
class AnomalyRates:
    """How often anomalies start: leaks and level shifts per sensor per hour of (simulated) time, spikes per
    reading. Each is a probability from 0 to 1."""

    leak: float = 0.02
    spike: float = 0.0002
    level_shift: float = 0.005

    def __post_init__(self) -> None:
        for name in ("leak", "spike", "level_shift"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"The {name.replace('_', ' ')} probability must be from 0 to 1, not {value}.")


@dataclass(frozen=True, slots=True)
class SensorSpec:
    key: str
    kind: str

    @property
    def profile(self) -> KindProfile:
        return PROFILES[self.kind]


def sensor_specs(count: int, *, prefix: str = "sim") -> list[SensorSpec]:
    """`count` sensors keyed `<prefix>-<kind>-<n>`, kinds taken in turn, `n` counting from 1 within a kind."""
    specs = []
    for index in range(count):
        kind = SIMULATED_KINDS[index % len(SIMULATED_KINDS)]
        specs.append(SensorSpec(key=f"{prefix}-{kind}-{index // len(SIMULATED_KINDS) + 1}", kind=kind))
    return specs


@dataclass(frozen=True, slots=True)
class Sample:
    sensor: str
    timestamp: datetime
    value: float


@dataclass(slots=True)
class AnomalyWindow:
    """One injected anomaly. `end` is the planned end until the series reaches it; `magnitude` is the signed peak
    deviation from the normal signal."""

    sensor: str
    kind: str
    start: datetime
    end: datetime
    magnitude: float

    def as_label(self, *, last: datetime | None = None) -> dict[str, str]:
        """`{sensor, kind, start, end}` with ISO 8601 UTC timestamps; `end` cut at `last` (the sensor's newest
        generated point) when the series stopped inside the window."""
        end = min(self.end, last) if last is not None else self.end
        return {"sensor": self.sensor, "kind": self.kind, "start": _iso(self.start), "end": _iso(end)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(slots=True)
class _Leak:
    window: AnomalyWindow
    rise: float
    plateau: float
    decay: float

    def deviation(self, at: float) -> float:
        """The leak's deviation at `at` (epoch seconds)."""
        return leak_deviation(
            at - self.window.start.timestamp(),
            magnitude=self.window.magnitude,
            rise=self.rise,
            plateau=self.plateau,
            decay=self.decay,
        )


@dataclass(slots=True)
class _SensorState:
    spec: SensorSpec
    offset: float
    jitter_hours: float
    noise_rng: random.Random
    drift_rng: random.Random
    event_rng: random.Random
    drift: float = 0.0
    last: float | None = None
    last_at: datetime | None = None
    leak: _Leak | None = None
    shift: AnomalyWindow | None = None
    windows: list[AnomalyWindow] = field(default_factory=list)


class Simulation:
    """The series of a set of sensors; call `tick(timestamp)` with increasing timestamps.

    `seed=None` draws a seed (kept in `.seed`, so any run can be replayed).
    """

    def __init__(
        self,
        sensors: Sequence[SensorSpec],
        *,
        seed: int | None = None,
        rates: AnomalyRates | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        if len({spec.key for spec in sensors}) != len(sensors):
            raise ValueError("Sensor keys must be unique.")
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.rates = rates or AnomalyRates()
        self.zone = zone
        self._states = [self._state(spec) for spec in sensors]

    def _state(self, spec: SensorSpec) -> _SensorState:
        def stream(name: str) -> random.Random:
            # String seeds are hashed with SHA-512: stable across processes, unlike hash().
            return random.Random(f"{self.seed}:{spec.key}:{name}")  # noqa: S311 (synthetic data, not secrets)

        character = stream("character")
        profile = spec.profile
        return _SensorState(
            spec=spec,
            offset=character.gauss(0, 0.1 * profile.amplitude),
            jitter_hours=character.uniform(-0.75, 0.75),
            noise_rng=stream("noise"),
            drift_rng=stream("drift"),
            event_rng=stream("events"),
        )

    @property
    def sensors(self) -> list[SensorSpec]:
        return [state.spec for state in self._states]

    def tick(self, timestamp: datetime) -> list[Sample]:
        """One reading of every sensor at `timestamp` (timezone-aware, later than the previous tick)."""
        if timestamp.tzinfo is None:
            raise ValueError("Timestamps must be timezone-aware.")
        at = timestamp.timestamp()
        hour = hour_of_day(timestamp, self.zone)
        return [Sample(state.spec.key, timestamp, self._value(state, timestamp, at, hour)) for state in self._states]

    def run(self, *, start: datetime, step: float, count: int) -> Iterator[list[Sample]]:
        """`count` ticks of simulated time from `start`, `step` seconds apart (a backfill)."""
        for index in range(count):
            yield self.tick(start + timedelta(seconds=index * step))

    def _value(self, state: _SensorState, timestamp: datetime, at: float, hour: float) -> float:
        profile = state.spec.profile
        if state.last is not None and at <= state.last:
            raise ValueError(f"Timestamps must increase: {timestamp.isoformat()} is not after the previous tick.")
        dt = 0.0 if state.last is None else at - state.last
        state.last, state.last_at = at, timestamp

        cycle = daily_cosine(hour, amplitude=profile.amplitude, peak_hour=profile.peak_hour, jitter=state.jitter_hours)
        state.drift = reflect(
            state.drift + state.drift_rng.gauss(0, profile.drift_rate * math.sqrt(dt / SECONDS_PER_HOUR)),
            profile.drift_limit,
        )
        value = profile.mean + state.offset + cycle + state.drift + state.noise_rng.gauss(0, profile.noise)
        value += self._anomalies(state, timestamp, at, dt)
        if profile.lower is not None:
            value = max(profile.lower, value)
        if profile.upper is not None:
            value = min(profile.upper, value)
        return round(value, profile.decimals)

    def _anomalies(self, state: _SensorState, timestamp: datetime, at: float, dt: float) -> float:
        rng, rates, profile, key = state.event_rng, self.rates, state.spec.profile, state.spec.key
        # Every draw is made at every tick, whatever the rates, so the random streams stay aligned.
        leak_roll, shift_roll, spike_roll = rng.random(), rng.random(), rng.random()
        deviation = 0.0

        if state.leak is not None and at > state.leak.window.end.timestamp():
            state.leak = None
        if state.leak is None and dt > 0 and leak_roll < chance(rates.leak, dt):
            # Whole seconds, so the labeled windows read cleanly.
            rise, plateau, decay = rng.randint(300, 7200), rng.randint(1800, 14400), rng.randint(1200, 10800)
            window = AnomalyWindow(
                key, LEAK, timestamp, timestamp + timedelta(seconds=rise + plateau + decay), rng.uniform(*profile.leak)
            )
            state.leak = _Leak(window, rise, plateau, decay)
            state.windows.append(window)
        if state.leak is not None:
            deviation += state.leak.deviation(at)

        if state.shift is not None and at >= state.shift.end.timestamp():
            state.shift = None
        if state.shift is None and dt > 0 and shift_roll < chance(rates.level_shift, dt):
            length = rng.randint(1800, 6 * 3600)
            state.shift = AnomalyWindow(
                key, LEVEL_SHIFT, timestamp, timestamp + timedelta(seconds=length), signed(rng, profile.shift)
            )
            state.windows.append(state.shift)
        if state.shift is not None:
            deviation += state.shift.magnitude

        if spike_roll < rates.spike:
            spike = AnomalyWindow(key, SPIKE, timestamp, timestamp, signed(rng, profile.spike))
            state.windows.append(spike)
            deviation += spike.magnitude
        return deviation

    def windows(self) -> list[AnomalyWindow]:
        """Every injected anomaly so far, in order of start (then sensor)."""
        return sorted((window for state in self._states for window in state.windows), key=lambda w: (w.start, w.sensor))

    def labels(self) -> list[dict[str, str]]:
        """The injected anomalies as `{sensor, kind, start, end}` windows, cut at each sensor's newest point."""
        last = {state.spec.key: state.last_at for state in self._states}
        return [window.as_label(last=last[window.sensor]) for window in self.windows()]

    def anomaly_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ANOMALY_KINDS, 0)
        for window in self.windows():
            counts[window.kind] += 1
        return counts
