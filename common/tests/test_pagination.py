"""Pages (common/pagination.py): a page size outside what the schema says answers 400 naming `page_size`, and a
cursor is a position the API made (a tampered one answers 404, never a database error)."""

import base64
from urllib.parse import quote

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from common.pagination import PageNumberPagination, TimestampCursorPagination
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

LISTS = [
    ("sensors-api:platform-list", [], PageNumberPagination.max_page_size),
    ("detection-api:anomaly-list", [], PageNumberPagination.max_page_size),
    ("rates-api:rate-list", [], PageNumberPagination.max_page_size),
    ("sensors-api:sensor-readings", ["s1"], TimestampCursorPagination.max_page_size),
    ("detection-api:sensor-detections", ["s1"], TimestampCursorPagination.max_page_size),
]


@pytest.fixture
def viewer_client(client_as, viewer):
    SensorFactory(key="s1")
    return client_as(viewer)


@pytest.mark.parametrize(("name", "args", "largest"), LISTS)
def test_a_page_size_outside_1_to_the_maximum_answers_400_naming_it(viewer_client, name, args, largest):
    url = reverse(name, args=args)
    for size in ["0", "-1", str(largest + 1), "abc", "5_0", "1e3", " 5", "null"]:
        response = viewer_client.get(url, {"page_size": size})
        assert response.status_code == 400, (size, response.content)
        assert response.json()["error"] == "validation_error"
        assert list(response.json()["fields"]) == ["page_size"], size
    for size in ["1", str(largest), ""]:
        assert viewer_client.get(url, {"page_size": size}).status_code == 200, size


def test_every_page_size_parameter_in_the_schema_states_its_bounds():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter["name"] == "page_size":
                    assert parameter["schema"]["type"] == "integer", (method, path)
                    assert parameter["schema"]["minimum"] == 1, (method, path)
                    assert parameter["schema"]["maximum"] in {1000, 10_000}, (method, path)
                    found += 1
                if parameter["name"] == "page":
                    assert parameter["schema"] == {"type": "integer", "minimum": 1}, (method, path)
    assert found == 11  # every list: catalogues, users, anomalies, events, baselines, rates, readings, detections


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "position",
    [
        quote("2024-01-01T00:00:00+23:00"),  # an offset PostgreSQL cannot hold
        quote("0000-01-01T00:00:00Z"),
        "abc",
        "%00",
        quote("2024-01-01T00:00:00\x00"),
    ],
)
@pytest.mark.parametrize("name", ["sensors-api:sensor-readings", "detection-api:sensor-detections"])
def test_a_tampered_cursor_answers_404(viewer_client, name, position):
    response = viewer_client.get(reverse(name, args=["s1"]), {"cursor": _cursor(f"p={position}")})
    assert response.status_code == 404, response.content
    assert response.json()["error"] == "not_found"
