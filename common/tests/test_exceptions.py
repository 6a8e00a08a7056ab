from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions

from common.exceptions import ApplicationError, api_exception_handler


def handle(exc):
    return api_exception_handler(exc, {})


def test_application_error_keeps_its_status_code_and_fields():
    response = handle(ApplicationError("Nope.", code="conflict", status_code=409, fields={"x": ["bad"]}))
    assert response.status_code == 409
    assert response.data == {"error": "conflict", "detail": "Nope.", "fields": {"x": ["bad"]}}


def test_serializer_field_errors():
    response = handle(exceptions.ValidationError({"value": ["Not a number."], "sensor": ["Unknown."]}))
    assert response.status_code == 400
    assert response.data == {
        "error": "validation_error",
        "detail": "Invalid input.",
        "fields": {"value": ["Not a number."], "sensor": ["Unknown."]},
    }


def test_non_field_errors_become_the_detail():
    response = handle(exceptions.ValidationError({"non_field_errors": ["End before start."]}))
    assert response.data["detail"] == "End before start."
    assert response.data["fields"] == {"non_field_errors": ["End before start."]}


def test_list_payload_errors_are_keyed_by_index():
    response = handle(exceptions.ValidationError([{}, {"value": ["Not finite."]}, {}]))
    assert response.data["fields"] == {"1": {"value": ["Not finite."]}}


def test_django_errors_are_mapped():
    assert handle(DjangoValidationError({"email": ["Bad."]})).data["fields"] == {"email": ["Bad."]}
    assert handle(Http404()).data["error"] == "not_found"
    assert handle(PermissionDenied()).data["error"] == "permission_denied"


def test_unexpected_errors_are_left_to_django():
    assert handle(RuntimeError("boom")) is None
