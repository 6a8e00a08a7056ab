from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sensors.models import HttpSource, Reading
from sensors.tests.conftest import fixture_bytes
from sensors.tests.factories import HttpSourceFactory, SensorFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("fetch_sources", *args, stdout=out)
    return out.getvalue()


def test_prints_one_line_per_source(http):
    HttpSourceFactory(sensor=SensorFactory(key="tank.level"), url="https://a.example.com/")
    http.get("https://a.example.com/", body=fixture_bytes("mixed_records.json"))
    assert run() == "tank.level: 8 received, 0 skipped (not newer), 3 stored, 0 duplicates, 5 rejected\n"


def test_a_failed_source_gives_one_line_and_a_non_zero_exit_after_the_others(http):
    HttpSourceFactory(sensor=SensorFactory(key="a"), url="https://a.example.com/")
    HttpSourceFactory(sensor=SensorFactory(key="b"), url="https://b.example.com/")
    http.get("https://a.example.com/", status=503, body=b"maintenance")
    http.get("https://b.example.com/", body=fixture_bytes("mixed_records.json"))
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("fetch_sources", stdout=out)
    assert str(error.value) == "1 of 2 sources failed: a."
    assert out.getvalue().splitlines() == [
        "a: failed: HTTP 503 Service Unavailable: 'maintenance'",
        "b: 8 received, 0 skipped (not newer), 3 stored, 0 duplicates, 5 rejected",
    ]
    assert Reading.objects.count() == 3


def test_one_sensor_even_when_its_source_is_disabled(http):
    HttpSourceFactory(sensor=SensorFactory(key="tank.level"), url="https://a.example.com/", enabled=False)
    other = HttpSourceFactory(sensor=SensorFactory(key="other"), url="https://other.example.com/")
    http.get("https://a.example.com/", body=fixture_bytes("mixed_records.json"))
    assert run("--sensor", "tank.level").startswith("tank.level: 8 received")
    assert not other.fetches.exists()
    # Without --sensor, the disabled source is left out.
    http.get("https://other.example.com/", json=[])
    assert run() == "other: 0 received, 0 skipped (not newer), 0 stored, 0 duplicates, 0 rejected\n"


def test_unknown_sensor_or_no_source_is_one_line():
    SensorFactory(key="plain")
    with pytest.raises(CommandError, match="^Sensor 'plain' has no external source.$"):
        call_command("fetch_sources", "--sensor", "plain")
    with pytest.raises(CommandError, match="^Sensor 'nope' has no external source.$"):
        call_command("fetch_sources", "--sensor", "nope")


def test_a_busy_source_is_reported(http):
    source = HttpSourceFactory(sensor=SensorFactory(key="busy"))
    HttpSource.objects.filter(pk=source.pk).update(fetching_since=timezone.now())
    assert run() == "busy: skipped, another fetch of it is running\n"
    with pytest.raises(CommandError, match="being fetched already"):
        call_command("fetch_sources", "--sensor", "busy")


def test_nothing_to_fetch():
    assert run() == "No enabled external source.\n"
