"""One error type and one API error shape.

Every API error body is `{"error": <code>, "detail": <message>, "fields": {<field>: [<message>, ...]}}`:
`error` is a stable machine-readable code, `detail` a human sentence, `fields` the per-field problems (empty
when the error is not about fields). Services raise `ApplicationError`; DRF and Django errors are mapped here, by
`api_exception_handler`, the one mapper: DRF views call it, and so do Django's error handlers (`handler400`,
`handler403`, `handler404`, `handler500`, set in config/urls.py) for requests to API paths (`API_PATH_PREFIXES`),
so that an answer given outside a DRF view (an unknown API URL, a body Django refused before the view, a crash)
has the same shape. Pages keep Django's HTML answers.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
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


class RequestTooLarge(exceptions.APIException):
    """A request body over the size cap (`REQUEST_MAX_BODY_BYTES`, also Django's `DATA_UPLOAD_MAX_MEMORY_SIZE`)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."

    @staticmethod
    def message(limit: int) -> str:
        return f"The request body is larger than the limit of {limit:,} bytes."


security_logger = logging.getLogger("django.security")


def _request_refusal(exc: SuspiciousOperation | BadRequest, *, log: bool) -> exceptions.APIException:
    """Django's refusals of a request (a body too large, too many fields or files, a bad request) as API errors."""
    if log:
        # Django logs these to `django.security.<name>` when it handles them itself; handled here, they still are.
        logging.getLogger(f"{security_logger.name}.{type(exc).__name__}").warning(str(exc))
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge(RequestTooLarge.message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return exceptions.ParseError(f"More than {limit:,} form fields were sent.", code="too_many_fields")
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return exceptions.ParseError(f"More than {limit:,} files were sent.", code="too_many_files")
    return exceptions.ParseError("The request could not be understood.", code="bad_request")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(error=exc.code, detail=exc.detail, fields=exc.fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation | BadRequest):
        # Django's handlers call with no context, after Django logged the refusal; a DRF view with its own.
        exc = _request_refusal(exc, log=bool(context))

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


# --- Django's error handlers (config/urls.py): the one shape on API paths, Django's pages elsewhere ---------------

SERVER_ERROR = error_body(error="server_error", detail="A server error occurred.")


def is_api_request(request: HttpRequest) -> bool:
    """Whether the request is to the API (`API_PATH_PREFIXES`), whose every answer has the one error shape."""
    return request.path.startswith(tuple(settings.API_PATH_PREFIXES))


def _api_error(exc: Exception, fallback: exceptions.APIException) -> JsonResponse:
    """`exc` as the one mapper answers it, or `fallback` (an APIException, always mapped) if it does not."""
    response = api_exception_handler(exc, {}) or api_exception_handler(fallback, {})
    if response is None:  # pragma: no cover - DRF maps every APIException
        return JsonResponse(SERVER_ERROR, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return JsonResponse(response.data, status=response.status_code)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Requests Django refused before any view (a body too large: 413; too many fields, files; a bad request)."""
    if is_api_request(request):
        return _api_error(exception, exceptions.ParseError(code="bad_request"))
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return _api_error(exception, exceptions.PermissionDenied())
    return defaults.permission_denied(request, exception)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An unknown URL (or one the router refused, e.g. a malformed key) answers `not_found` on API paths."""
    if is_api_request(request):
        return _api_error(exception, exceptions.NotFound())
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    """An unexpected error (already logged by Django with its traceback): nothing of it is shown to the client."""
    if is_api_request(request):
        return JsonResponse(SERVER_ERROR, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return defaults.server_error(request)
