import json
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from common.pagination import TimestampCursorPagination as ReadingCursorPagination
from sensors import selectors
from sensors.ingest import readings_ingest
from sensors.models import Installation, Platform, Reading, Sensor, Transport
from sensors.services.device_keys import device_key_create, device_key_revoke
from sensors.tests.factories import HttpSourceFactory, InstallationFactory, PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

READINGS = reverse("sensors-api:reading-batch")
LATEST_MANY = reverse("sensors-api:readings-latest")
PLATFORMS = reverse("sensors-api:platform-list")
INSTALLATIONS = reverse("sensors-api:installation-list")
SENSORS = reverse("sensors-api:sensor-list")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def readings_url(key: str) -> str:
    return reverse("sensors-api:sensor-readings", args=[key])


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail", "fields"}
    assert body["error"] == error
    assert body["detail"]
    return body


def item(sensor="temperature", value=14.5, timestamp="2024-12-01T12:00:00Z") -> dict:
    return {"sensor": sensor, "value": value, "timestamp": timestamp}


def store(sensor, points) -> None:
    readings_ingest(
        messages=[{"sensor": sensor.key, "timestamp": ts.isoformat(), "value": value} for ts, value in points],
        transport=Transport.REST,
        atomic=True,
        decoded=True,
    )


def device_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {raw}")
    return client


@pytest.fixture
def operator_client(client_as, operator):
    return client_as(operator)


@pytest.fixture
def viewer_client(client_as, viewer):
    return client_as(viewer)


# --- POST /readings/ --------------------------------------------------------------------------------------------


def test_one_reading_object_is_stored(operator_client):
    response = operator_client.post(READINGS, item(), format="json")

    assert response.status_code == 201, response.content
    assert response.json() == {"received": 1, "stored": 1, "duplicates": 0}
    reading = Reading.objects.get()
    assert (reading.sensor.key, reading.timestamp, reading.value) == ("temperature", at(2024, 12, 1, 12), 14.5)


def test_a_list_is_stored_and_duplicates_are_counted(operator_client):
    batch = [item(timestamp=f"2024-12-01T12:00:0{s}Z", value=s) for s in range(3)]
    first = operator_client.post(READINGS, [*batch, batch[0]], format="json")
    again = operator_client.post(READINGS, batch, format="json")

    assert first.status_code == 201
    assert first.json() == {"received": 4, "stored": 3, "duplicates": 1}
    assert again.status_code == 200  # nothing new
    assert again.json() == {"received": 3, "stored": 0, "duplicates": 3}
    assert Reading.objects.count() == 3


def test_an_invalid_item_stores_nothing_and_names_each_bad_index_and_field(operator_client):
    batch = [item(), item(value="hot"), item(timestamp="2024-12-01T12:00:01Z"), item(timestamp="yesterday"), 7]

    body = assert_error(operator_client.post(READINGS, batch, format="json"), 400, "validation_error")

    assert set(body["fields"]) == {"1", "3", "4"}
    assert set(body["fields"]["1"]) == {"value"}
    assert set(body["fields"]["3"]) == {"timestamp"}
    assert set(body["fields"]["4"]) == {"non_field_errors"}
    assert Reading.objects.count() == 0
    assert not Sensor.objects.exists()  # the auto-registered sensor was rolled back too


@pytest.mark.parametrize("body", [[], "text", 12])
def test_an_empty_list_or_a_non_object_is_refused(operator_client, body):
    assert_error(operator_client.post(READINGS, body, format="json"), 400, "validation_error")


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_an_empty_body_is_refused_with_a_readable_detail(operator_client, content_type):
    extra = {"content_type": content_type} if content_type else {}
    body = assert_error(operator_client.generic("POST", READINGS, b"", **extra), 400, "validation_error")
    assert "empty" in body["detail"]
    assert body["fields"] == {}  # not a reading at index 0 missing every field


def test_more_than_the_batch_limit_is_refused(operator_client, settings):
    settings.SENSORS_REST_MAX_BATCH = 3
    batch = [item(timestamp=f"2024-12-01T12:00:0{s}Z") for s in range(4)]

    body = assert_error(operator_client.post(READINGS, batch, format="json"), 400, "too_many_readings")

    assert "3" in body["detail"]
    assert Reading.objects.count() == 0
    assert operator_client.post(READINGS, batch[:3], format="json").status_code == 201


def test_a_full_batch_of_ten_thousand_fits_in_one_request():
    _, raw = api_token_create(user=UserFactory(operator=True))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    key = "platform-north-sea-alpha.module-07.deck-3.gas-detector-012:channel-a"
    start = at(2024, 1, 1)
    # Devices often add fields of their own (ignored); pretty-printed, this body is over Django's default 2.5 MB.
    batch = [
        {
            "sensor": key,
            "value": i / 7,
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "unit": "ppm",
            "quality": "good",
        }
        for i in range(10_000)
    ]
    content = json.dumps(batch, indent=8)
    assert len(content) > 2_621_440

    response = client.post(READINGS, content, content_type="application/json")

    assert response.status_code == 201, response.content[:500]
    assert response.json() == {"received": 10_000, "stored": 10_000, "duplicates": 0}


def test_viewer_may_not_write_readings(viewer_client):
    assert_error(viewer_client.post(READINGS, item(), format="json"), 403, "permission_denied")
    assert not Reading.objects.exists()


def test_device_key_writes_its_own_sensor_only():
    own, other = SensorFactory(key="own"), SensorFactory(key="other")
    _, raw = device_key_create(name="pump", sensor=own)
    client = device_client(raw)

    ok = client.post(READINGS, item(sensor="own"), format="json")
    refused = client.post(READINGS, [item(sensor="own", value=1), item(sensor="other")], format="json")
    unknown = client.post(READINGS, item(sensor="brand-new"), format="json")

    assert ok.status_code == 201
    body = assert_error(refused, 400, "validation_error")
    assert set(body["fields"]) == {"1"}
    assert "sensor" in body["fields"]["1"]
    assert_error(unknown, 400, "validation_error")  # a device key never registers sensors
    assert list(Reading.objects.values_list("sensor__key", flat=True)) == ["own"]
    assert not Reading.objects.filter(sensor=other).exists()


def test_device_key_of_a_platform_writes_its_sensors():
    platform = PlatformFactory()
    SensorFactory(key="on-platform", platform=platform)
    SensorFactory(key="off-platform")
    _, raw = device_key_create(name="gateway", platform=platform)

    assert device_client(raw).post(READINGS, item(sensor="on-platform"), format="json").status_code == 201
    assert_error(device_client(raw).post(READINGS, item(sensor="off-platform"), format="json"), 400, "validation_error")


def test_a_revoked_device_key_is_refused():
    sensor = SensorFactory(key="own")
    key, raw = device_key_create(name="pump", sensor=sensor)
    device_key_revoke(key=key)

    assert_error(device_client(raw).post(READINGS, item(sensor="own"), format="json"), 401, "authentication_failed")
    assert not Reading.objects.exists()


def test_device_key_reads_nothing():
    sensor = SensorFactory(key="own")
    _, raw = device_key_create(name="pump", sensor=sensor)

    assert device_client(raw).get(SENSORS).status_code == 403
    assert device_client(raw).get(readings_url("own")).status_code == 403


# --- catalogue CRUD ---------------------------------------------------------------------------------------------


def test_platform_crud_by_slug(operator_client, viewer_client):
    created = operator_client.post(PLATFORMS, {"name": "North Sea A", "slug": "north-a"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "north-a"

    detail = reverse("sensors-api:platform-detail", args=["north-a"])
    assert viewer_client.get(detail).json()["name"] == "North Sea A"
    patched = operator_client.patch(detail, {"latitude": 60.5, "longitude": 2.1}, format="json")
    assert patched.status_code == 200, patched.content
    assert Platform.objects.get(slug="north-a").latitude == 60.5

    assert operator_client.delete(detail).status_code == 204
    assert not Platform.objects.exists()


def test_platform_validation_errors_come_from_the_model(operator_client):
    PlatformFactory(name="Taken", slug="taken")

    incomplete = operator_client.post(PLATFORMS, {"name": "Half", "slug": "half", "latitude": 10}, format="json")
    duplicate = operator_client.post(PLATFORMS, {"name": "Taken", "slug": "other"}, format="json")

    body = assert_error(incomplete, 400, "validation_error")
    assert body["fields"]  # the model's check: a location has both coordinates
    assert "name" in assert_error(duplicate, 400, "validation_error")["fields"]
    assert Platform.objects.count() == 1


def test_viewer_reads_but_may_not_write_the_catalogue(viewer_client):
    PlatformFactory(slug="north")

    assert viewer_client.get(PLATFORMS).status_code == 200
    assert_error(viewer_client.post(PLATFORMS, {"name": "X", "slug": "x"}, format="json"), 403, "permission_denied")
    detail = reverse("sensors-api:platform-detail", args=["north"])
    assert_error(viewer_client.delete(detail), 403, "permission_denied")
    assert Platform.objects.count() == 1


def test_installation_crud_and_platform_filter(operator_client):
    north, south = PlatformFactory(slug="north"), PlatformFactory(slug="south")
    InstallationFactory(platform=south)

    created = operator_client.post(
        INSTALLATIONS, {"platform": "north", "name": "Module 1", "porosity": {"north": 0.3}}, format="json"
    )
    assert created.status_code == 201, created.content
    bad = operator_client.post(
        INSTALLATIONS, {"platform": "north", "name": "Module 2", "porosity": {"up": 2}}, format="json"
    )
    assert "porosity" in assert_error(bad, 400, "validation_error")["fields"]

    listed = operator_client.get(INSTALLATIONS, {"platform": "north"}).json()
    assert listed["count"] == 1
    assert listed["results"][0]["platform"] == "north"
    detail = reverse("sensors-api:installation-detail", args=[created.json()["id"]])
    assert operator_client.patch(detail, {"height": 20}, format="json").json()["height"] == 20
    assert operator_client.delete(detail).status_code == 204
    assert list(Installation.objects.values_list("platform", flat=True)) == [south.pk]
    assert north.pk


def test_sensor_crud_by_a_key_with_dots_colons_dashes_and_underscores(operator_client):
    platform = PlatformFactory(slug="north")
    key = "north.m-1:gas_02"

    created = operator_client.post(
        SENSORS, {"key": key, "name": "Gas 2", "platform": "north", "kind": "gas", "unit": "ppm"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["latest"] == {"timestamp": None, "value": None}

    detail = reverse("sensors-api:sensor-detail", args=[key])
    assert detail.endswith(f"/sensors/{key}/")
    store(Sensor.objects.get(key=key), [(at(2024, 1, 1), 3.5)])
    shown = operator_client.get(detail).json()
    assert shown["platform"] == "north"
    assert shown["latest"] == {"timestamp": "2024-01-01T00:00:00Z", "value": 3.5}
    assert operator_client.patch(detail, {"active": False}, format="json").json()["active"] is False
    assert operator_client.delete(detail).status_code == 204
    assert not Sensor.objects.exists()
    assert platform.pk


def test_sensor_shows_its_external_source_read_only_without_url_or_headers(operator_client):
    source = HttpSourceFactory(sensor=SensorFactory(key="ext"), headers={"X-Api-Key": "secret"}, enabled=False)
    SensorFactory(key="plain")
    detail = reverse("sensors-api:sensor-detail", args=["ext"])

    shown = operator_client.get(detail).json()["source"]
    assert shown == {
        "format": "json",
        "enabled": False,
        "status": "disabled",
        "last_fetched_at": None,
        "last_success_at": None,
        "consecutive_failures": 0,
    }
    assert operator_client.get(reverse("sensors-api:sensor-detail", args=["plain"])).json()["source"] is None
    response = operator_client.patch(detail, {"name": "x", "source": {"enabled": True}}, format="json")
    assert response.status_code == 200
    source.refresh_from_db()
    assert source.enabled is False  # read-only: ignored on writes


def test_sensor_installation_on_another_platform_is_refused(operator_client):
    PlatformFactory(slug="north")
    elsewhere = InstallationFactory(platform=PlatformFactory(slug="south"))

    response = operator_client.post(
        SENSORS, {"key": "s1", "platform": "north", "installation": elsewhere.pk}, format="json"
    )

    assert "installation" in assert_error(response, 400, "validation_error")["fields"]
    assert not Sensor.objects.exists()


def test_sensor_filters_and_search(viewer_client):
    north = PlatformFactory(slug="north")
    installation = InstallationFactory(platform=north)
    SensorFactory(key="north.temp", name="Deck temperature", platform=north, installation=installation)
    SensorFactory(key="north.gas", name="Gas", platform=north, kind="gas", active=False)
    SensorFactory(key="south.temp", name="Temperature", kind="temperature")

    def keys(**params):
        response = viewer_client.get(SENSORS, params)
        assert response.status_code == 200, response.content
        return [s["key"] for s in response.json()["results"]]

    assert keys(platform="north") == ["north.gas", "north.temp"]
    assert keys(kind="temperature") == ["north.temp", "south.temp"]
    assert keys(active="false") == ["north.gas"]
    assert keys(installation=installation.pk) == ["north.temp"]
    assert keys(search="temperature") == ["north.temp", "south.temp"]
    assert keys(search="gas") == ["north.gas"]
    assert keys(platform="north", kind="gas") == ["north.gas"]


@pytest.mark.parametrize("value", ["3.402823466e+38", "1.5", "0", "x", str(2**63)])
def test_an_installation_filter_that_is_no_row_id_answers_400(viewer_client, value):
    response = viewer_client.get(SENSORS, {"installation": value})
    assert "installation" in assert_error(response, 400, "validation_error")["fields"]


@pytest.mark.parametrize("count", [1, 8])
def test_catalogue_lists_take_a_fixed_number_of_queries(viewer_client, django_assert_num_queries, count):
    for n in range(count):
        platform = PlatformFactory()
        installation = InstallationFactory(platform=platform)
        sensor = SensorFactory(key=f"s{n}", platform=platform, installation=installation)
        if n % 2:
            HttpSourceFactory(sensor=sensor)  # joined, not queried per row

    # session, user, role check (user and group permissions), count, page: the same for one row or many
    for url in (SENSORS, INSTALLATIONS, PLATFORMS):
        with django_assert_num_queries(6):
            response = viewer_client.get(url)
        assert response.json()["count"] == count


# --- GET /sensors/<key>/readings/ -------------------------------------------------------------------------------


def test_unknown_sensor_readings_are_404(viewer_client):
    assert_error(viewer_client.get(readings_url("nope")), 404, "not_found")


def test_cursor_pages_walk_every_row_exactly_once(viewer_client):
    sensor = SensorFactory(key="walk")
    start = at(2024, 1, 1)
    store(sensor, [(start + timedelta(seconds=s), s) for s in range(25)])
    store(SensorFactory(key="noise"), [(start + timedelta(seconds=s), -1) for s in range(25)])

    seen, url, pages = [], readings_url("walk") + "?page_size=7", 0
    while url:
        body = viewer_client.get(url).json()
        seen.extend(body["results"])
        url, pages = body["next"], pages + 1

    assert pages == 4
    assert [r["value"] for r in seen] == [float(s) for s in range(25)]
    assert seen[0] == {"timestamp": "2024-01-01T00:00:00+00:00", "value": 0.0}
    assert len({r["timestamp"] for r in seen}) == 25


def test_raw_page_size_is_bounded(viewer_client, monkeypatch):
    sensor = SensorFactory(key="limit")
    store(sensor, [(at(2024, 1, 1) + timedelta(seconds=s), s) for s in range(5)])
    assert ReadingCursorPagination.page_size == 1000
    assert len(viewer_client.get(readings_url("limit")).json()["results"]) == 5

    monkeypatch.setattr(ReadingCursorPagination, "max_page_size", 3)
    body = viewer_client.get(readings_url("limit"), {"page_size": 3}).json()
    assert len(body["results"]) == 3
    assert body["next"]
    # Past the maximum: refused (it used to be cut down silently, which the schema's maximum did not say).
    assert_error(viewer_client.get(readings_url("limit"), {"page_size": 50}), 400, "validation_error")


def test_start_inclusive_end_exclusive_naive_is_utc_and_tz_shapes_output(viewer_client):
    sensor = SensorFactory(key="range")
    store(sensor, [(at(2024, 1, 1, 0, m), m) for m in range(5)])

    body = viewer_client.get(
        readings_url("range"), {"start": "2024-01-01T00:01:00", "end": "2024-01-01T01:03:00+01:00", "tz": "Asia/Tokyo"}
    ).json()

    assert body["results"] == [
        {"timestamp": "2024-01-01T09:01:00+09:00", "value": 1.0},
        {"timestamp": "2024-01-01T09:02:00+09:00", "value": 2.0},
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2024-13-01"}, "end"),
        ({"start": "2024-01-02", "end": "2024-01-01"}, "end"),
        ({"bucket": "7m"}, "bucket"),
        ({"bucket": "5m", "agg": "median"}, "agg"),
        ({"agg": "max"}, "agg"),
        ({"tz": "Mars/Olympus"}, "tz"),
    ],
)
def test_bad_query_parameters_are_400_with_field_errors(viewer_client, params, field):
    SensorFactory(key="q")
    body = assert_error(viewer_client.get(readings_url("q"), params), 400, "validation_error")
    assert field in body["fields"]


def test_bucketed_readings_in_a_zone(viewer_client):
    sensor = SensorFactory(key="b")
    store(sensor, [(at(2024, 3, 30, 23, 0), 2), (at(2024, 3, 31, 21, 0), 4), (at(2024, 3, 31, 22, 0), 10)])

    body = viewer_client.get(
        readings_url("b"), {"bucket": "1d", "tz": "Europe/Oslo", "start": "2024-03-30", "end": "2024-04-02"}
    ).json()

    assert body == {
        "sensor": "b",
        "bucket": "1d",
        "agg": "avg",
        "tz": "Europe/Oslo",
        "results": [
            {"bucket_start": "2024-03-31T00:00:00+01:00", "value": 3.0},
            {"bucket_start": "2024-04-01T00:00:00+02:00", "value": 10.0},
        ],
    }


def test_too_many_buckets_is_a_clear_400(viewer_client):
    SensorFactory(key="wide")
    body = assert_error(
        viewer_client.get(readings_url("wide"), {"bucket": "1m", "start": "2020-01-01", "end": "2024-01-01"}),
        400,
        "too_many_buckets",
    )
    assert "100,000" in body["detail"]


def consume(response) -> list[str]:
    """Read a streaming answer the way an ASGI server does: through its async iterator."""
    assert response.is_async

    async def collect():
        return [part.decode() if isinstance(part, bytes) else part async for part in response.streaming_content]

    return async_to_sync(collect)()


def test_csv_streams_a_range_larger_than_one_chunk(viewer_client):
    sensor = SensorFactory(key="csv.big")
    total = selectors.CSV_CHUNK_ROWS * 2 + 123
    start = at(2024, 1, 1)
    store(sensor, [(start + timedelta(seconds=s), s) for s in range(total)])

    response = viewer_client.get(readings_url("csv.big"), {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    parts = consume(response)
    assert len(parts) == 1 + 3  # the header, then one part per keyset chunk
    lines = "".join(parts).splitlines()
    assert lines[0] == "timestamp,value"
    assert lines[1] == "2024-01-01T00:00:00+00:00,0.0"
    assert len(lines) == total + 1
    assert lines[-1] == f"{(start + timedelta(seconds=total - 1)).isoformat()},{float(total - 1)!r}"


def test_csv_honours_the_range_and_accept_header(viewer_client):
    sensor = SensorFactory(key="csv.small")
    store(sensor, [(at(2024, 1, 1, 0, m), m) for m in range(4)])

    response = viewer_client.get(
        readings_url("csv.small"),
        {"start": "2024-01-01T00:01:00Z", "end": "2024-01-01T00:03:00Z"},
        HTTP_ACCEPT="text/csv",
    )

    assert "".join(consume(response)).splitlines() == [
        "timestamp,value",
        "2024-01-01T00:01:00+00:00,1.0",
        "2024-01-01T00:02:00+00:00,2.0",
    ]


def test_bucketed_csv(viewer_client):
    sensor = SensorFactory(key="csv.b")
    store(sensor, [(at(2024, 1, 1, 0, 0), 1), (at(2024, 1, 1, 0, 4), 3), (at(2024, 1, 1, 0, 5), 7)])

    response = viewer_client.get(readings_url("csv.b"), {"format": "csv", "bucket": "5m", "agg": "count"})

    assert "".join(consume(response)).splitlines() == [
        "bucket_start,value",
        "2024-01-01T00:00:00+00:00,2",
        "2024-01-01T00:05:00+00:00,1",
    ]


def test_csv_errors_keep_the_json_error_shape(viewer_client):
    SensorFactory(key="csv.err")

    assert_error(viewer_client.get(readings_url("csv.err"), {"format": "csv", "start": "x"}), 400, "validation_error")
    assert_error(viewer_client.get(readings_url("csv.none"), {"format": "csv"}), 404, "not_found")
    assert viewer_client.get(readings_url("csv.err"), {"format": "xml"}).status_code == 404


def test_options_with_csv_asked_for_describes_the_endpoint_in_json(viewer_client):
    SensorFactory(key="csv.opt")
    for url in (readings_url("csv.opt"), readings_url("csv.none")):
        response = viewer_client.options(url + "?format=csv")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response.json()["name"] == "Sensor Readings Api"


# --- latest -----------------------------------------------------------------------------------------------------


def test_latest_of_one_sensor(viewer_client):
    sensor = SensorFactory(key="one")
    SensorFactory(key="empty")
    store(sensor, [(at(2024, 1, 1, 1), 5), (at(2024, 1, 1, 0), 4)])

    assert viewer_client.get(reverse("sensors-api:sensor-latest", args=["one"])).json() == {
        "sensor": "one",
        "timestamp": "2024-01-01T01:00:00+00:00",
        "value": 5.0,
    }
    empty = viewer_client.get(reverse("sensors-api:sensor-latest", args=["empty"]))
    assert empty.status_code == 200
    assert empty.json() == {"sensor": "empty", "timestamp": None, "value": None}
    assert_error(viewer_client.get(reverse("sensors-api:sensor-latest", args=["nope"])), 404, "not_found")


def test_latest_of_many_sensors_in_one_query(viewer_client, django_assert_num_queries):
    platform = PlatformFactory(slug="north")
    a, b = SensorFactory(key="a", platform=platform), SensorFactory(key="b", platform=platform)
    SensorFactory(key="c")
    store(a, [(at(2024, 1, 1), 1)])
    store(b, [(at(2024, 1, 2), 2)])
    viewer_client.get(LATEST_MANY, {"sensor": "a"})

    with django_assert_num_queries(5):  # session, user, role check (two), then the sensors in one
        by_keys = viewer_client.get(LATEST_MANY + "?sensor=b&sensor=a&sensor=zzz")
    by_platform = viewer_client.get(LATEST_MANY, {"platform": "north"})

    expected = [
        {"sensor": "a", "timestamp": "2024-01-01T00:00:00+00:00", "value": 1.0},
        {"sensor": "b", "timestamp": "2024-01-02T00:00:00+00:00", "value": 2.0},
    ]
    assert by_keys.json() == expected
    assert by_platform.json() == expected


def test_latest_of_many_needs_sensors_or_a_platform(viewer_client):
    assert "sensor" in assert_error(viewer_client.get(LATEST_MANY), 400, "validation_error")["fields"]


# --- output serializers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Europe/Oslo", "America/St_Johns"])
def test_the_bulk_serializers_fast_output_equals_drfs_field_by_field_output(zone):
    from zoneinfo import ZoneInfo

    from rest_framework import serializers as drf

    from sensors.api.serializers import BucketOutSerializer, ReadingOutSerializer
    from sensors.selectors import Bucket

    context = {"tz": ZoneInfo(zone)}
    moments = [datetime(2024, 3, 31, 0, 30, tzinfo=UTC) + timedelta(minutes=47 * i) for i in range(40)]
    for serializer_class, rows in [
        (
            ReadingOutSerializer,
            [{"timestamp": t, "value": v} for t, v in zip(moments, [1.5, -0.0, 7, 1e300] * 10, strict=True)],
        ),
        (BucketOutSerializer, [Bucket(start=t, value=v) for t, v in zip(moments, [2.5, None, 3, 0] * 10, strict=True)]),
    ]:
        serializer = serializer_class(context=context)
        for row in rows:
            # As JSON: 7 and 7.0 are equal in Python, not in the body.
            assert json.dumps(serializer.to_representation(row)) == json.dumps(
                drf.Serializer.to_representation(serializer, row)
            )
