"""Writes to the catalogue: platforms, installations and sensors (not readings: see `ingest`)."""

from django.db import transaction

from sensors.models import Installation, Platform, Sensor


@transaction.atomic
def platform_save(*, platform: Platform) -> Platform:
    """Create or update a platform after full validation (unique name and slug, complete location)."""
    platform.full_clean()
    platform.save()
    return platform


@transaction.atomic
def installation_save(*, installation: Installation) -> Installation:
    """Create or update an installation; its geometry and porosity document are validated."""
    installation.full_clean()
    installation.save()
    return installation


@transaction.atomic
def sensor_save(*, sensor: Sensor) -> Sensor:
    """Create or update a sensor; its installation, if any, must stand on its platform."""
    if not sensor.platform_id and sensor.installation is not None:
        sensor.platform_id = sensor.installation.platform_id
    sensor.full_clean()
    sensor.save()
    return sensor


def sensor_delete(*, sensor: Sensor) -> None:
    """Delete a sensor with all its readings."""
    sensor.delete()


def platform_delete(*, platform: Platform) -> None:
    """Delete a platform with its installations; its sensors stay, without a platform."""
    platform.delete()


def installation_delete(*, installation: Installation) -> None:
    """Delete an installation; its sensors stay, without an installation."""
    installation.delete()
