from datetime import UTC, datetime, timedelta

import factory

from sensors.models import HttpSource, Installation, Platform, Reading, Sensor, SensorKind


class PlatformFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Platform
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Platform {n}")
    slug = factory.Sequence(lambda n: f"platform-{n}")
    description = factory.Faker("sentence")


class InstallationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Installation

    platform = factory.SubFactory(PlatformFactory)
    name = factory.Sequence(lambda n: f"Module {n}")
    height = 12.5
    orientation = 90.0
    volume = 300.0
    porosity = factory.LazyFunction(lambda: {"north": 0.25, "south": 0.5})


class SensorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sensor
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"sensor-{n}")
    name = factory.Faker("word")
    platform = factory.SubFactory(PlatformFactory)
    kind = SensorKind.TEMPERATURE
    unit = "°C"


class ReadingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reading

    sensor = factory.SubFactory(SensorFactory)
    timestamp = factory.Sequence(lambda n: datetime(2024, 12, 1, tzinfo=UTC) + timedelta(minutes=n))
    value = factory.Faker("pyfloat", min_value=-10, max_value=40)


class HttpSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HttpSource

    sensor = factory.SubFactory(SensorFactory)
    format = HttpSource.Format.JSON
    url = factory.Sequence(lambda n: f"https://telemetry{n}.example.com/api/observations")
