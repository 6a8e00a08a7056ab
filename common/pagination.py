from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (at most 1,000) for every list endpoint."""

    page_size_query_param = "page_size"
    page_size_query_description = "Results per page: 50 by default, at most 1000."
    max_page_size = 1000


class TimestampCursorPagination(pagination.CursorPagination):
    """Time series (readings, detections): oldest first, cursor pages that stay stable while new rows arrive;
    `?page_size=` up to 10,000."""

    ordering = "timestamp"
    page_size = 1000
    page_size_query_param = "page_size"
    page_size_query_description = "Rows per page: 1000 by default, at most 10000."
    cursor_query_description = "From `next`/`previous`."
    max_page_size = 10_000


def paginated_response(
    *, request: Request, view: APIView, queryset: QuerySet, serializer_class: type[BaseSerializer]
) -> Response:
    """A page of `queryset` through `serializer_class`, paginated by the view's `pagination_class`: for an APIView
    over a selector (DRF does not paginate an APIView itself; the schema reads the same `pagination_class`)."""
    paginator = getattr(view, "pagination_class")()  # noqa: B009  (APIView declares none; ours name one)
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
