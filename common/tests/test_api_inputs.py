"""Every parameter of the API, read from the schema (so a new endpoint is covered by itself): a time parameter
refuses what a layer cannot hold, and no NUL character or lone surrogate reaches a query from a path or query
parameter or a related-field lookup; each answers 400 `validation_error` naming the parameter."""

import json
from urllib.parse import quote, urlencode

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from common.inputs import NO_NUL_PATTERN
from detection.tests.factories import AnomalyFactory
from sensors.tests.factories import InstallationFactory, PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and path.startswith(("/api/", "/v1/")):
                yield path, method, operation


def _parameters(operation, location):
    return [p for p in operation.get("parameters", []) if p["in"] == location]


@pytest.fixture
def catalogue(db):
    """One row for every kind of path parameter, named as the URLs below fill them in."""
    platform = PlatformFactory(slug="p1")
    installation = InstallationFactory(platform=platform)
    sensor = SensorFactory(key="s1", platform=platform)
    anomaly = AnomalyFactory(sensor=sensor)
    return {
        "slug": "p1",
        "id": installation.pk,
        "key": "s1",
        "anomaly_id": anomaly.pk,
        "baseline_id": 1,
        "job_id": "0b7c4a8e-5d0f-4c59-9d7e-2f4c3e1a9b10",
    }


def _url(path: str, values: dict) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    return path


@pytest.fixture
def staff_client(client_as, staff_user):
    return client_as(staff_user)


def _assert_field_error(response, field: str) -> None:
    assert response.status_code == 400, (field, response.status_code, response.content[:300])
    body = response.json()
    assert body["error"] == "validation_error", body
    assert field in body["fields"], body
    assert body["detail"], body


def test_a_nul_in_any_query_parameter_answers_400_naming_it(schema, catalogue, staff_client):
    tried = 0
    for path, method, operation in _operations(schema):
        if method != "get":
            continue
        url = _url(path, catalogue)
        for parameter in _parameters(operation, "query"):
            name = parameter["name"]
            response = staff_client.get(f"{url}?{urlencode({name: 'a' + chr(0) + 'b'})}")
            _assert_field_error(response, name)
            tried += 1
    assert tried > 40  # every list's filters, pages and search, and the readings, rates and latest parameters


def test_a_nul_in_any_text_path_parameter_answers_400_naming_it(schema, catalogue, staff_client):
    tried = set()
    for path, method, operation in _operations(schema):
        for parameter in _parameters(operation, "path"):
            name = parameter["name"]
            if parameter["schema"].get("type") != "string":
                continue
            if parameter["schema"].get("pattern", NO_NUL_PATTERN) != NO_NUL_PATTERN:
                # The route's own pattern (a sensor key) refuses it: no such resource.
                response = getattr(staff_client, method)(_url(path, {**catalogue, name: "a\x00b"}))
                assert response.status_code == 404, (method, path)
                continue
            response = getattr(staff_client, method)(_url(path, {**catalogue, name: "a\x00b"}), {}, format="json")
            _assert_field_error(response, name)
            tried.add(name)
    assert tried == {"slug", "job_id"}


@pytest.mark.parametrize("search", ["a\x00b", "\x00"])
def test_a_nul_in_search_is_keyed_by_search(staff_client, search):
    _assert_field_error(staff_client.get(reverse("sensors-api:platform-list"), {"search": search}), "search")


BAD_TIMES = [
    "2024-01-01T00:00:00+23:00",
    "2024-01-01T00:00:00-16:00",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:00:00-10:00",
    "10000-01-01T00:00:00Z",
    "-infinity",
]
BAD_DAYS = ["0000-01-01", "0001-01-01", "9999-12-31", "10000-01-01", "-infinity", "infinity"]


def _time_parameters(schema):
    for path, method, operation in _operations(schema):
        for parameter in _parameters(operation, "query"):
            if parameter["schema"].get("format") in {"date-time", "date"}:
                yield path, method, parameter


def test_every_time_parameter_is_the_one_bounded_time(schema):
    found = {(path, p["name"]): p["schema"] for path, method, p in _time_parameters(schema)}
    assert {
        ("/api/v1/sensors/{key}/readings/", "start"),
        ("/api/v1/sensors/{key}/readings/", "end"),
        ("/api/v1/sensors/{key}/detections/", "since"),
        ("/api/v1/sensors/{key}/detections/", "until"),
        ("/api/v1/anomalies/", "since"),
        ("/api/v1/anomalies/", "until"),
        ("/api/v1/rates/", "date"),
        ("/api/v1/rates/convert/", "date"),
    } <= set(found)
    for where, parameter_schema in found.items():
        assert parameter_schema.get("pattern"), where  # the bounds, as far as a pattern says them


def test_every_time_parameter_refuses_out_of_bounds_values_with_400_naming_it(schema, catalogue, staff_client):
    tried = 0
    for path, _method, parameter in _time_parameters(schema):
        name = parameter["name"]
        bad = BAD_TIMES if parameter["schema"]["format"] == "date-time" else BAD_DAYS
        for value in bad:
            response = staff_client.get(_url(path, catalogue), {name: value})
            _assert_field_error(response, name)
            tried += 1
    assert tried >= 8 * 6


def test_the_time_bounds_hold_in_a_body_too(client_as, operator):
    response = client_as(operator).post(reverse("rates-api:rates-update"), {"date": "0000-01-01"}, format="json")
    _assert_field_error(response, "date")
    response = client_as(operator).post(reverse("rates-api:rates-update"), {"date": "9999-12-31"}, format="json")
    _assert_field_error(response, "date")


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00+15:59", "2024-01-01T00:00:00-15:59", "0002-01-01"])
def test_offsets_and_years_within_the_bounds_are_taken(catalogue, staff_client, value):
    assert staff_client.get(reverse("detection-api:anomaly-list"), {"since": value}).status_code == 200
    url = reverse("detection-api:sensor-detections", args=["s1"])
    assert staff_client.get(url, {"since": value, "until": "9998-12-31T00:00:00Z"}).status_code == 200


# --- related fields in bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["p\x00", "\x00", "p\ud800"])
@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("sensors-api:sensor-list", {"key": "s2", "kind": "gas"}),
        ("sensors-api:installation-list", {"name": "I2"}),
    ],
)
def test_an_unstorable_platform_in_a_write_answers_400_naming_it(catalogue, client_as, operator, url, body, platform):
    # As JSON escapes (`"\\u0000"`, `"\\ud800"`): a lone surrogate cannot even be encoded as UTF-8.
    text = json.dumps({**body, "platform": platform})
    response = client_as(operator).post(reverse(url), text, content_type="application/json")
    _assert_field_error(response, "platform")


def test_every_boolean_parameter_takes_true_or_false_only(schema, catalogue, staff_client):
    tried = set()
    for path, method, operation in _operations(schema):
        for parameter in _parameters(operation, "query"):
            if method != "get" or parameter["schema"].get("type") != "boolean":
                continue
            url, name = _url(path, catalogue), parameter["name"]
            for value in ["maybe", "null", "2", "yes"]:
                _assert_field_error(staff_client.get(url, {name: value}), name)
            for value in ["true", "false", "True", "0", "1", ""]:
                assert staff_client.get(url, {name: value}).status_code == 200, (path, name, value)
            tried.add((path, name))
    assert {("/api/v1/sensors/", "active"), ("/api/v1/anomalies/", "active"), ("/api/v1/users/", "is_staff")} <= tried
