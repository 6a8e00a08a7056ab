from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (at most 1,000) for every list endpoint."""

    page_size_query_param = "page_size"
    max_page_size = 1000
