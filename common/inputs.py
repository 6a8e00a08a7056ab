"""What the API takes as input, checked before anything reaches the database (docs/api.md, "Input rules").

- **Times.** One parser, `instant_parse` (and `day_parse` for days), with the bounds every layer holds: ISO 8601,
  years 0002 to 9998 as written (inside Python's 1–9999 by a year, so that converting to UTC or to any zone and
  adding a bucket cannot overflow; PostgreSQL and SQLite hold more), UTC offsets up to ±15:59 (PostgreSQL's limit;
  Python reads up to ±23:59). A naive time is read in UTC. The result is aware and in UTC, so no offset ever reaches
  SQL. Every time parameter of the API uses it: `InstantField` / `DayField` in serializers, `InstantFilter` in
  filtersets; their schema (`INSTANT_SCHEMA`, `DAY_SCHEMA`) states the bounds as a pattern.
- **Yes/no filters** (`BooleanFilter`) take `true`/`false` (`1`/`0`) and refuse anything else.
- **Text.** PostgreSQL cannot hold a NUL character, and a lone surrogate cannot be encoded: either in a query
  parameter or a path parameter is refused by `params_storable_middleware` (400, naming the parameter), and in a
  related-field lookup of a body by `SlugRelatedField`. DRF's `CharField` refuses both in a body's text already.

Every refusal is the one error shape: 400 `validation_error`, `fields` keyed by the parameter's or field's name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import django_filters
from asgiref.sync import iscoroutinefunction
from django import forms
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.decorators import sync_and_async_middleware
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.exceptions import error_body
from common.text import text_is_storable

MIN_YEAR, MAX_YEAR = 2, 9998
MAX_OFFSET = timedelta(hours=16)  # exclusive: ±15:59:59 at most
EXAMPLE_INSTANT = "2024-12-01T12:00:00Z"

# The bounds as regular expressions, for the schema (a value in RFC 3339 form matches exactly when it is in bounds).
YEAR_PATTERN = r"(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
INSTANT_PATTERN = rf"^{YEAR_PATTERN}-[^\x00]*([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$"
# Any other text the API takes (a parameter, a body's text) is free of NUL characters (common.schema adds it).
NO_NUL_PATTERN = r"^[^\x00]*$"
DAY_PATTERN = rf"^{YEAR_PATTERN}-[0-9]{{2}}-[0-9]{{2}}$"
BOUNDS = "Years 0002 to 9998, UTC offsets up to ±15:59; naive times are UTC."
INSTANT_SCHEMA: dict[str, Any] = {"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN}
DAY_SCHEMA: dict[str, Any] = {"type": "string", "format": "date", "pattern": DAY_PATTERN}

NUL_MESSAGE = "Null characters are not allowed."
SURROGATE_MESSAGE = "Surrogate characters are not allowed."


class InputInvalid(ValueError):
    """A value the API does not take; the message is the field error it answers."""


def text_problem(text: str) -> str | None:
    """Why `text` cannot reach the database, or None when it can (common.text.text_is_storable)."""
    if text_is_storable(text):
        return None
    return NUL_MESSAGE if "\x00" in text else SURROGATE_MESSAGE


def _shown(text: str) -> str:
    return repr(text[:50])


def _storable(text: str) -> str:
    # Python's datetime.fromisoformat takes a trailing NUL character ("2024-01-01T00:00:00\x00").
    if problem := text_problem(text):
        raise InputInvalid(problem)
    return text


def _year_check(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InputInvalid(f"Out of range: the year must be between {MIN_YEAR:04} and {MAX_YEAR}.")


def instant_parse(text: str, *, naive_zone: tzinfo = UTC) -> datetime:
    """The instant `text` names, aware and in UTC: ISO 8601 as Python reads it (surrounding whitespace ignored), a
    naive time read in `naive_zone`, a date alone as its midnight. Raises `InputInvalid` outside the bounds above
    (`MIN_YEAR`..`MAX_YEAR` as written, offsets under `MAX_OFFSET`)."""
    stripped = _storable(text).strip()
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        hint = " In a URL, write + as %2B." if " " in stripped else ""
        raise InputInvalid(f"{_shown(text)} is not an ISO 8601 date and time, e.g. {EXAMPLE_INSTANT}.{hint}") from None
    _year_check(parsed.year)
    offset = parsed.utcoffset()
    if offset is None:
        parsed = parsed.replace(tzinfo=naive_zone)
    elif abs(offset) >= MAX_OFFSET:
        shown = parsed.strftime("%z")
        raise InputInvalid(f"The UTC offset {shown[:3]}:{shown[3:5]} is out of range: at most ±15:59.")
    return parsed.astimezone(UTC)


def day_parse(text: str) -> date:
    """The day `text` names (ISO 8601, e.g. `2024-12-01`), years `MIN_YEAR`..`MAX_YEAR`; raises `InputInvalid`."""
    try:
        parsed = date.fromisoformat(_storable(text).strip())
    except ValueError:
        raise InputInvalid(f"{_shown(text)} is not an ISO 8601 date, e.g. 2024-12-01.") from None
    _year_check(parsed.year)
    return parsed


# --- serializer fields ----------------------------------------------------------------------------------------------


class _ParsedField(serializers.Field[Any, Any, Any, Any]):
    parse: Callable[[str], Any]

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Must be an ISO 8601 string, not {type(data).__name__}.")
        try:
            return type(self).parse(data)
        except InputInvalid as exc:
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field(INSTANT_SCHEMA)
class InstantField(_ParsedField):
    """A time parameter or field (`instant_parse`); its value is an aware UTC datetime."""

    parse = staticmethod(instant_parse)

    def to_representation(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field(DAY_SCHEMA)
class DayField(_ParsedField):
    """A day parameter or field (`day_parse`)."""

    parse = staticmethod(day_parse)

    def to_representation(self, value: date) -> str:
        return value.isoformat()


class SlugRelatedField(serializers.SlugRelatedField[Any]):
    """DRF's SlugRelatedField, refusing text the database cannot store before it looks the slug up (the query would
    fail with a NUL character or a lone surrogate). Use it for every slug lookup in a body."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and (problem := text_problem(data)):
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


# --- filters --------------------------------------------------------------------------------------------------------


class InstantFormField(forms.Field):
    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return instant_parse(str(value))
        except InputInvalid as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class InstantFilter(django_filters.Filter):
    """A time filter (`instant_parse`); an empty value means no filter, as for every django-filter filter."""

    field_class = InstantFormField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The schema of this filter, with its own description (drf-spectacular takes a filter's annotation as is).
        described = " ".join(filter(None, [str(self.extra.get("help_text", "")), f"ISO 8601. {BOUNDS}"]))
        extend_schema_field({**INSTANT_SCHEMA, "description": described})(self)


BOOLEAN_TEXTS = {"true": True, "1": True, "false": False, "0": False}


class BooleanFormField(forms.Field):
    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        text = str(value).strip().lower()
        if text not in BOOLEAN_TEXTS:
            raise forms.ValidationError("Must be true or false.", code="invalid")
        return BOOLEAN_TEXTS[text]


class BooleanFilter(django_filters.Filter):
    """A yes/no filter: `true`/`false` (or `1`/`0`, any case); anything else answers 400 naming it (django-filter's
    own ignores what it does not read, which answers every row); an empty value means no filter."""

    field_class = BooleanFormField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extend_schema_field({"type": "boolean", "description": str(self.extra.get("help_text", ""))})(self)


# --- path and query parameters --------------------------------------------------------------------------------------


def params_refusal(request: HttpRequest) -> HttpResponse | None:
    """The 400 answer for a request whose query parameters (names or values) or path parameters hold text the
    database cannot store, naming each; None for every other request."""
    fields: dict[str, list[str]] = {}
    try:
        query = request.GET.lists()
    except SuspiciousOperation:
        return None  # too many fields: the view meets the same refusal and answers it as Django's refusals are
    for name, values in query:
        problem = next(filter(None, map(text_problem, [name, *values])), None)
        if problem:
            fields[name] = [problem]
    if not text_is_storable(request.path_info):  # cheap: the path is resolved again only in this case
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            match = None  # no route takes it: the usual 404
        for name, value in match.kwargs.items() if match else []:
            if isinstance(value, str) and (problem := text_problem(value)):
                fields[name] = [problem]
    if not fields:
        return None
    detail = "A parameter holds a NUL character or a lone surrogate: " + ", ".join(map(repr, fields)) + "."
    return JsonResponse(error_body(error="validation_error", detail=detail, fields=fields), status=400)


@sync_and_async_middleware
def params_storable_middleware(get_response: Callable[..., Any]) -> Callable[..., Any]:
    """Refuses (400) a request whose path or query parameters the database could not store (`params_refusal`),
    before any view runs: one rule for every API path, page and admin page."""
    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> HttpResponse:
            return params_refusal(request) or await get_response(request)

        return middleware_async

    def middleware(request: HttpRequest) -> HttpResponse:
        return params_refusal(request) or get_response(request)

    return middleware
