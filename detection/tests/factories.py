"""Test data of the detection app: series with known shapes, and baselines built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory
import numpy as np

from detection.models import Anomaly, Baseline, Detection, SensorEvent, Status, SystemEvent
from detection.services.baselines import baseline_create
from sensors.tests.factories import SensorFactory

DAY = 144  # points per day at 10-minute cadence: the default window m


def normal_series(n: int, *, start: int = 0, mean: float = 30.0, amplitude: float = 8.0, noise: float = 1.5, seed=0):
    """A daily cycle with noise: the 'normal' behaviour of the test sensors."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    return mean + amplitude * np.sin(2 * np.pi * t / DAY) + rng.normal(0, noise, n)


def seed_baseline(*, name: str = "seed-mid", points: int = 14 * DAY, window: int = DAY, **shape) -> Baseline:
    return baseline_create(name=name, kind=Baseline.Kind.SEED, values=normal_series(points, **shape), window=window)


# --- rows for the API and selector tests (detections, anomalies and events as the detection service writes them) --


class DetectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Detection

    sensor = factory.SubFactory(SensorFactory)
    timestamp = factory.Sequence(lambda n: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=10 * n))
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
