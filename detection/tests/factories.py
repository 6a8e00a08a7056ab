"""Test data of the detection app: series with known shapes, readings stored from them, baselines built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory
import numpy as np

from detection.data import generate_seeds
from detection.models import Anomaly, Baseline, Detection, SensorEvent, Status, SystemEvent
from detection.services.baselines import baseline_create
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

DAY = 144  # points per day at 10-minute cadence: the default window m
START = datetime(2026, 1, 1, tzinfo=UTC)  # the first stored reading
STEP = timedelta(minutes=10)


def normal_series(n: int, *, start: int = 0, mean: float = 30.0, amplitude: float = 8.0, noise: float = 1.5, seed=0):
    """A daily cycle with noise: the 'normal' behaviour of the test sensors."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    return mean + amplitude * np.sin(2 * np.pi * t / DAY) + rng.normal(0, noise, n)


def leak_series(n: int = 1400, leak: tuple[int, int] = (900, 1000), rise: float = 15.0) -> np.ndarray:
    """A normal series (after a 14-day seed) with a leak planted: a slow rise over `leak`."""
    values = normal_series(n, start=14 * DAY, seed=1)
    a, b = leak
    values[a:b] += np.linspace(0, rise, b - a)
    return values


def like_seed(name: str, *, days: int = 5, seed: int = 7) -> np.ndarray:
    """Readings generated as the seed `name` was, with another random seed."""
    return generate_seeds.series(name, days=days, rng=np.random.default_rng(seed))


def readings_store(sensor, values, *, first: int = 0, order=None) -> None:
    """The sensor's readings of `values`, STEP apart from START + `first` steps; inserted in `order` if given."""
    rows = [Reading(sensor=sensor, timestamp=START + (first + i) * STEP, value=float(v)) for i, v in enumerate(values)]
    if order is not None:
        rows = [rows[i] for i in order]
    Reading.objects.bulk_create(rows)


def system_events(kind: str | None = None) -> list[SystemEvent]:
    """The system events so far, oldest first (of `kind` if given)."""
    query = SystemEvent.objects.order_by("id")
    return list(query.filter(kind=kind) if kind else query)


def seed_baseline(*, name: str = "seed-mid", points: int = 14 * DAY, window: int = DAY, **shape) -> Baseline:
    return baseline_create(name=name, kind=Baseline.Kind.SEED, values=normal_series(points, **shape), window=window)


# --- rows for the API and selector tests (detections, anomalies and events as the detection service writes them) --


class DetectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Detection

    sensor = factory.SubFactory(SensorFactory)
    timestamp = factory.Sequence(lambda n: START + n * STEP)
    level = 42.0
    distance = 1.5
    status = Status.OK


class AnomalyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Anomaly

    sensor = factory.SubFactory(SensorFactory)
    started_at = factory.Sequence(lambda n: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n))
    ended_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=30))
    closed_at = factory.LazyAttribute(lambda o: o.ended_at + timedelta(minutes=60))
    peak_level = 230.0
    peak_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=10))
    peak_status = Status.CRITICAL
    flagged = 4


class SensorEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SensorEvent

    sensor = factory.SubFactory(SensorFactory)
    kind = SensorEvent.Kind.CRITICAL
    at = datetime(2026, 1, 1, tzinfo=UTC)
    level = 230.0
    message = factory.LazyAttribute(lambda o: f"{o.sensor.key}: critical")


class SystemEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SystemEvent

    kind = SystemEvent.Kind.INFO
    job = "select_baselines"
    message = factory.Faker("sentence")
