"""Pages of every list: page numbers for catalogues and events, cursors for time series. A page size is a whole
number from 1 to the paginator's maximum (anything else answers 400 naming `page_size`, as the schema says), and a
cursor is a position the API made (a tampered one answers 404 like any unknown cursor)."""

import re
from typing import Any

from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from common.inputs import InputInvalid, instant_parse

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class _PageSizeBounded:
    """`?page_size=` from 1 to `max_page_size`, refused otherwise; absent or empty: the default."""

    page_size: int | None
    page_size_query_param: str | None
    max_page_size: int

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param or "", "")
        if raw == "":
            return self.page_size
        if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"page_size": [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)  # type: ignore[misc]  # the paginator's own
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = page_size_schema(self.max_page_size)
            elif parameter["name"] == "page":
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


def page_size_schema(largest: int) -> dict[str, Any]:
    """The schema of a `page_size` parameter (for views that declare it themselves)."""
    return {"type": "integer", "minimum": 1, "maximum": largest}


class PageNumberPagination(_PageSizeBounded, pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (at most 1,000) for every list endpoint."""

    page_size_query_param = "page_size"
    page_size_query_description = "Results per page: 50 by default, at most 1000."
    max_page_size = 1000


class TimestampCursorPagination(_PageSizeBounded, pagination.CursorPagination):
    """Time series (readings, detections): oldest first, cursor pages that stay stable while new rows arrive;
    `?page_size=` up to 10,000."""

    ordering = "timestamp"
    page_size = 1000
    page_size_query_param = "page_size"
    page_size_query_description = "Rows per page: 1000 by default, at most 10000."
    cursor_query_description = "From `next`/`previous`."
    max_page_size = 10_000

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        # The position is text from the client: read by the one time parser, so that only a UTC instant in bounds
        # reaches the query (an offset PostgreSQL cannot hold would fail it).
        try:
            position = instant_parse(str(cursor.position)).isoformat()
        except InputInvalid:
            raise NotFound(self.invalid_cursor_message) from None
        return cursor._replace(position=position)  # type: ignore[arg-type]  # the stubs say int; DRF keeps text


def paginated_response(
    *, request: Request, view: APIView, queryset: QuerySet, serializer_class: type[BaseSerializer]
) -> Response:
    """A page of `queryset` through `serializer_class`, paginated by the view's `pagination_class`: for an APIView
    over a selector (DRF does not paginate an APIView itself; the schema reads the same `pagination_class`)."""
    paginator = getattr(view, "pagination_class")()  # noqa: B009  (APIView declares none; ours name one)
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
