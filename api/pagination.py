"""Cursor pagination of the API's lists (DRF's CursorPagination: an opaque cursor, stable
while rows are added), ordered by a unique key."""

from rest_framework.pagination import CursorPagination

PAGE_SIZE = 50
PAGE_SIZE_MAX = 200


class ApiCursorPagination(CursorPagination):
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE_MAX
    ordering = "pk"
