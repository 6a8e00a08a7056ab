"""The OpenAPI schema's house rules (drf-spectacular), applied to every operation in one place.

- Tags by area: an operation is tagged with its app (`accounts`, `sensors`, `detection`, `rates`) unless its view
  names another area with `@extend_schema(tags=[...])` (`auth`, `readings`). The descriptions are in
  SPECTACULAR_SETTINGS["TAGS"].
- Error answers: each operation lists the error statuses it can give, all with the one error body
  (`common.exceptions.ErrorSerializer`), read from what the view is made of: input (400, every operation: a NUL
  character or a lone surrogate in any path or query parameter is refused before the view runs, see
  `common.inputs`), permissions (401, and 403 when a role or a kind of credential can be refused), a path
  parameter or page (404), throttles (429), a body over the size cap (413, every operation that takes a
  body), a request line over 16 KiB (414, every operation). Statuses a view declares itself (409, a 401 of its
  own) get the body too.
- Text: every string the API takes (a parameter, a body's text) without a pattern of its own gets one refusing NUL
  characters, as the server refuses them (`common.inputs`, DRF's CharField).
- Request bodies: a body that must be one of several shapes (a `PolymorphicProxySerializer`) is required, and a list
  serializer's `min_length`/`max_length` are its `minItems`/`maxItems` (drf-spectacular leaves both out).
- Filters of an APIView: a view whose selector applies a FilterSet names it as `filterset_class`; its query
  parameters are shown as DRF's filter backend would show them on a generic view.
"""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular import openapi
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.utils import PolymorphicProxySerializer
from knox.auth import TokenAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.serializers import ListSerializer

from common.exceptions import ErrorSerializer
from common.inputs import NO_NUL_PATTERN

ERROR_DESCRIPTIONS = {
    400: "Invalid input (`validation_error`, with `fields` keyed by the parameter or field), or a business rule "
    "refused it.",
    401: "No credentials, or invalid ones (`not_authenticated`, `authentication_failed`).",
    403: "The caller's role or kind of credential does not allow it (`permission_denied`).",
    404: "No such object, page or cursor (`not_found`).",
    409: "The object's state does not allow it.",
    413: "The request body is larger than `REQUEST_MAX_BODY_BYTES` (`request_too_large`).",
    414: "The request line (path and query) is longer than 16 KiB (`uri_too_long`).",
    429: "Too many requests (`throttled`); see the `Retry-After` header.",
}

# A bad page or cursor answers 404.
PAGE_PARAMETERS = {"page", "cursor"}

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _nul_refused(schema: dict[str, Any] | None) -> None:
    """A string schema without a pattern of its own gets one refusing NUL characters, as the server does in every
    parameter (`common.inputs`) and body text (DRF's CharField); arrays' items likewise."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "array":
        _nul_refused(schema["items"])
    elif schema.get("type") == "string" and not {"enum", "pattern", "format"} & set(schema):
        schema["pattern"] = NO_NUL_PATTERN


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema with the house's tags, error answers and APIView filters."""

    def get_tags(self) -> list[str]:
        return [self.view.__module__.split(".")[0]]

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        filterset_class = getattr(self.view, "filterset_class", None)
        if isinstance(self.view, GenericAPIView) or filterset_class is None or self.method != "GET":
            return super()._get_filter_parameters()
        extension = DjangoFilterExtension(DjangoFilterBackend())
        model = filterset_class._meta.model
        return [
            parameter
            for name, field in filterset_class.base_filters.items()
            for parameter in extension.resolve_filter_field(self, model, filterset_class, name, field)
        ]

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        # One of several shapes (e.g. a reading or a list of them): no body is none of them.
        return schema, required or isinstance(serializer, PolymorphicProxySerializer)

    def _unwrap_list_serializer(self, serializer, direction):
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and isinstance(serializer, ListSerializer):
            if serializer.min_length is not None:
                schema["minItems"] = serializer.min_length
            if serializer.max_length is not None:
                schema["maxItems"] = serializer.max_length
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":  # after the fields' own validators gave their patterns
            for field_schema in schema.get("properties", {}).values():
                _nul_refused(field_schema)
        return schema

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            _nul_refused(parameter["schema"])
        responses = operation["responses"]
        declared = {int(code) for code in responses if code.isdigit() and int(code) in ERROR_DESCRIPTIONS}
        for code in sorted(declared | self.error_statuses(operation)):
            description = responses.get(str(code), {}).get("description") or ERROR_DESCRIPTIONS[code]
            responses[str(code)] = self._get_response_for_code(
                ErrorSerializer, str(code), media_types=["application/json"]
            ) | {"description": description}
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        """The error statuses the view's make-up implies for this operation."""
        # Any operation: a NUL character in any parameter, even one it does not take, is refused (common.inputs);
        # the server refuses a request line over 16 KiB before any view (config/server.py).
        statuses = {400, 414}
        # A body of any kind is capped before it is read (common/asgi.py, config/server.py).
        if "requestBody" in operation or self.method in UNSAFE_METHODS:
            statuses.add(413)
        parameters = operation.get("parameters", [])
        query = {p["name"] for p in parameters if p["in"] == "query"}
        permissions = self.view.get_permissions()
        if any(not isinstance(permission, AllowAny) for permission in permissions):
            statuses.add(401)
            # A role can be missing, a device key passes one permission only, and a session write needs CSRF;
            # only "any token holder" (the token-only revoke) has nothing left to refuse.
            token_only = all(isinstance(a, TokenAuthentication) for a in self.view.get_authenticators())
            role_needed = any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions)
            if role_needed or not token_only:
                statuses.add(403)
        if any(p["in"] == "path" for p in parameters) or query & PAGE_PARAMETERS:
            statuses.add(404)
        if self.view.get_throttles():
            statuses.add(429)
        return statuses


HEALTH_CHECK_SCHEMA = {
    "type": "object",
    "properties": {"state": {"type": "string", "enum": ["up", "down", "disabled", "degraded"]}},
    "required": ["state"],
    "additionalProperties": True,
    "description": "The part's state and what was measured (latency, detail, …).",
}


HEALTH_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "down": {"type": "array", "items": {"type": "string"}, "description": "The parts that are down."},
        "degraded": {"type": "array", "items": {"type": "string"}, "description": "The parts that are degraded."},
        "checks": {"type": "object", "additionalProperties": HEALTH_CHECK_SCHEMA},
    },
    "required": ["status", "down", "degraded", "checks"],
}


def health_paths(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """A postprocessing hook adding `/healthcheck` and `/healthcheck/live` (plain Django views, outside DRF: no
    authentication, throttles or error body) under the `health` tag."""

    def json(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    result["paths"]["/healthcheck"] = {
        "get": {
            "operationId": "healthcheck",
            "description": "Each part's state (common/health.py); 503 names the parts that are down.",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": json(
                    HEALTH_SCHEMA,
                    "No part is down (`status` says `degraded` and `degraded` names the parts "
                    "that work with something missing).",
                ),
                "503": json(HEALTH_SCHEMA, "A part is down (see `down`)."),
            },
        }
    }
    result["paths"]["/healthcheck/live"] = {
        "get": {
            "operationId": "liveness",
            "description": "The process answers HTTP (for container probes; never fails on a dependency).",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": json({"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}, "Alive.")
            },
        }
    }
    return result
