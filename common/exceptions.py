"""One error type and one API error shape.

Every API error body is `{"error": <code>, "detail": <message>, "fields": {<field>: [<message>, ...]}}`:
`error` is a stable machine-readable code, `detail` a human sentence, `fields` the per-field problems (empty
when the error is not about fields). Services raise `ApplicationError`; DRF and Django errors are mapped here.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A business-rule failure raised by a service; the API answers it with `status_code`."""

    def __init__(
        self,
        detail: str,
        *,
        code: str = "invalid",
        status_code: int = status.HTTP_400_BAD_REQUEST,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status_code = status_code
        self.fields = fields or {}


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees to plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


class ErrorSerializer(serializers.Serializer):
    """The body of every API error, as the schema shows it (`Error`); `error_body` builds it."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # `fields` is also the name of a Serializer property, so the fields are declared here.
        return {
            "error": serializers.CharField(help_text="A stable code: `validation_error`, `not_found`, `throttled`, …"),
            "detail": serializers.CharField(help_text="One human sentence."),
            "fields": serializers.DictField(
                child=serializers.JSONField(),
                help_text="Messages per field (a list of strings), or per item index for a list body; empty when "
                "the error is not about fields.",
            ),
        }


def error_body(*, error: str, detail: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": error, "detail": detail, "fields": fields or {}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(error=exc.code, detail=exc.detail, fields=exc.fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling and logging take over

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
            non_field = fields.pop("non_field_errors", None)
            message = non_field[0] if non_field else "Invalid input."
            if non_field:
                fields["non_field_errors"] = non_field
        elif isinstance(detail, list):
            # A list payload: errors per item, keyed by the item's index.
            fields = {str(i): _flatten(item) for i, item in enumerate(detail) if item}
            message = "Invalid input."
        else:
            fields, message = {}, str(detail)
        response.data = error_body(error="validation_error", detail=message, fields=fields)
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
        message = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(error=code, detail=str(message))
    return response
