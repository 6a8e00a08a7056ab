from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (at most 1,000) for every list endpoint."""

    page_size_query_param = "page_size"
    max_page_size = 1000


class TimestampCursorPagination(pagination.CursorPagination):
    """Time series (readings, detections): oldest first, cursor pages that stay stable while new rows arrive;
    `?page_size=` up to 10,000."""

    ordering = "timestamp"
    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 10_000
