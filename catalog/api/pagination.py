from rest_framework.pagination import CursorPagination


class ProductCursorPagination(CursorPagination):
    """Keyset pagination over the ordering the client chose.

    The cursor carries the last row's sort key, so page N+1 is a
    `WHERE key > last` range read on an index instead of an OFFSET that
    reads and throws away every earlier row (chapter 05).
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_ordering(self, request, queryset, view):
        return queryset.query.order_by
