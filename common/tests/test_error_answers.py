"""Answers Django gives outside DRF's views, and bodies DRF's parsers choke on: the one error shape on API paths.

These go through Django's own handler (the test client), past the ASGI body cap, so that Django's limits are the
ones tested; test_asgi.py tests the cap in front of it.
"""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory

from common import exceptions as common_exceptions

pytestmark = pytest.mark.django_db

ONE_SHAPE = {"error", "detail", "fields"}


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == ONE_SHAPE
    assert body["error"] == error
    return body


@pytest.fixture
def crash_client() -> Client:
    """A client that gets the answer to an unhandled exception instead of the exception (as a server would)."""
    return Client(raise_request_exception=False)


# --- bodies Django refuses ---------------------------------------------------------------------------------------


def test_a_body_over_djangos_limit_answers_413_in_the_one_shape(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post(
        "/api/v1/auth/token/",
        data=json.dumps({"email": "a@example.com", "password": "x" * 2000}),
        content_type="application/json",
    )

    body = assert_error(response, 413, "request_too_large")
    assert body["detail"] == "The request body is larger than the limit of 1,000 bytes."


def test_a_form_body_over_djangos_limit_answers_413_in_the_one_shape(client, settings):
    """Form bodies are read by Django's request (CSRF, request.POST), not by DRF's JSON parser."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post(
        "/api/v1/auth/token/",
        data="email=a%40example.com&password=" + "x" * 2000,
        content_type="application/x-www-form-urlencoded",
    )

    assert_error(response, 413, "request_too_large")


def test_too_many_form_fields_answer_400_in_the_one_shape(client, settings):
    fields = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.post("/api/v1/auth/token/", data=fields, content_type="application/x-www-form-urlencoded")

    body = assert_error(response, 400, "too_many_fields")
    assert body["detail"] == "More than 1,000 form fields were sent."


def test_too_many_files_answer_400_in_the_one_shape(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    boundary = "b0undary"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"; filename="f{i}.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\nx\r\n"
        for i in range(3)
    )
    response = client.post(
        "/api/v1/auth/token/",
        data=f"{parts}--{boundary}--\r\n",
        content_type=f"multipart/form-data; boundary={boundary}",
    )

    assert_error(response, 400, "too_many_files")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", "--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n"),  # no boundary
        ("multipart/form-data; boundary=x", "garbage with no boundary at all"),
        ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n'),  # truncated
        ("multipart/form-data; boundary=\x00", "--\x00\r\n"),
    ],
)
def test_malformed_multipart_answers_400_in_the_one_shape(client, content_type, body):
    response = client.post("/api/v1/auth/token/", data=body, content_type=content_type)

    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert set(json.loads(response.content)) == ONE_SHAPE


# --- JSON bodies -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/sensors/", "/api/v1/platforms/", "/api/v1/readings/"])
@pytest.mark.parametrize("nested", ["[" * 100_000, '{"a":' * 100_000, "[" * 5000 + "]" * 5000])
def test_deeply_nested_json_is_a_parse_error_not_a_server_error(operator, crash_client, path, nested):
    crash_client.force_login(operator)
    response = crash_client.post(path, data=nested, content_type="application/json")

    body = assert_error(response, 400, "parse_error")
    assert body["detail"] == "JSON parse error - the body is nested too deeply."


def test_invalid_json_is_a_parse_error(operator, client):
    client.force_login(operator)
    response = client.post("/api/v1/sensors/", data="{bad", content_type="application/json")

    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("content_type", ["application/json", ""])
def test_an_empty_body_to_readings_answers_400_in_the_one_shape(operator, client, content_type):
    client.force_login(operator)
    response = client.generic("POST", "/api/v1/readings/", b"", content_type=content_type)

    assert response.status_code == 400
    assert set(json.loads(response.content)) == ONE_SHAPE


# --- unknown URLs, methods, media types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here/",
        "/api/v1/sensors/a key with spaces/",  # the router's key pattern refuses it
        "/api/v1/sensors/x/readings/extra/",
        "/api/nothing/",
        "/v1/nothing/",
    ],
)
def test_unknown_api_urls_answer_404_in_the_one_shape(viewer, client, path):
    client.force_login(viewer)
    assert_error(client.get(path), 404, "not_found")


def test_unknown_pages_keep_djangos_html_404(client):
    response = client.get("/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_not_allowed_answers_405_in_the_one_shape(operator, client):
    client.force_login(operator)
    assert_error(client.delete("/api/v1/readings/"), 405, "method_not_allowed")


def test_an_unacceptable_media_type_answers_406_in_the_one_shape(viewer, client):
    client.force_login(viewer)
    assert_error(client.get("/api/v1/sensors/", HTTP_ACCEPT="text/xml"), 406, "not_acceptable")


def test_options_on_csv_readings_is_not_a_server_error(viewer, crash_client):
    from sensors.tests.factories import SensorFactory

    sensor = SensorFactory()
    crash_client.force_login(viewer)
    response = crash_client.options(f"/api/v1/sensors/{sensor.key}/readings/?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


# --- server errors -------------------------------------------------------------------------------------------------


def test_a_server_error_on_an_api_path_answers_json_500_in_the_one_shape(viewer, crash_client, monkeypatch, settings):
    from accounts.api import views

    def crash(*args, **kwargs):
        raise RuntimeError("a bug with a secret in its message")

    monkeypatch.setattr(views.UserMeApi, "get", crash)
    assert settings.DEBUG is False
    crash_client.force_login(viewer)
    response = crash_client.get("/api/v1/users/me/")

    body = assert_error(response, 500, "server_error")
    assert "secret" not in response.content.decode()
    assert body == {"error": "server_error", "detail": "A server error occurred.", "fields": {}}


def test_a_server_error_on_a_page_keeps_djangos_html_500(crash_client, monkeypatch):
    from django.views.generic import TemplateView

    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(TemplateView, "get", crash)
    response = crash_client.get("/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


# --- the handlers themselves ---------------------------------------------------------------------------------------


def test_a_permission_denied_outside_drf_answers_403_in_the_one_shape_on_api_paths():
    request = RequestFactory().get("/api/v1/anything/")
    response = common_exceptions.handler403(request, PermissionDenied())

    assert response.status_code == 403
    assert json.loads(response.content) == {
        "error": "permission_denied",
        "detail": "You do not have permission to perform this action.",
        "fields": {},
    }
    page = common_exceptions.handler403(RequestFactory().get("/accounts/x/"), PermissionDenied())
    assert page["Content-Type"].startswith("text/html")


def test_the_project_wires_the_handlers():
    from config import urls

    for code in (400, 403, 404, 500):
        assert getattr(urls, f"handler{code}") == f"common.exceptions.handler{code}"
