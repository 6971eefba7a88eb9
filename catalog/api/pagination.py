from shop.pagination import SafeCursorPagination


class ProductCursorPagination(SafeCursorPagination):
    """Keyset pagination over the ordering the client chose.

    The cursor carries the last row's sort key, so page N+1 is a
    `WHERE key > last` range read on an index instead of an OFFSET that
    reads and throws away every earlier row (chapter 05).
    """

    def get_ordering(self, request, queryset, view):
        return queryset.query.order_by
