"""Keyset (cursor) pagination that treats a tampered cursor as a client error.

DRF decodes the cursor's position and hands it straight to a `__gt` / `__lt`
filter. A position that is not a valid value of the ordering column (text
for a date, NaN for a price, a NUL byte) would otherwise surface as a 500
from the database; here it is the same 404 "Invalid cursor" as a cursor
that does not decode at all.
"""

from decimal import Decimal

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class SafeCursorPagination(CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        position = cursor.position if cursor is not None else None
        if position is not None and not self._position_is_valid(position):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def _position_is_valid(self, position: str) -> bool:
        if "\x00" in position:
            return False
        field = self._ordering_field()
        if field is None:
            return True
        try:
            value = field.to_python(position)
        except (ValidationError, TypeError, ValueError):
            return False
        if isinstance(value, Decimal):
            # NaN and Infinity parse as decimals but are no price to page from.
            return value.is_finite() and abs(value) < Decimal(10) ** 15
        return value is not None

    def _ordering_field(self):
        name = self.ordering[0].lstrip("-") if self.ordering else None
        queryset = getattr(self, "_queryset", None)
        if name is None or queryset is None:
            return None
        annotation = queryset.query.annotations.get(name)
        if annotation is not None:
            return annotation.output_field
        try:
            return queryset.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
