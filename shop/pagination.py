"""Keyset (cursor) pagination on the whole ordering, tampered cursors a 404.

The cursor carries the last row's value of *every* ordering column, and the
next page is the rows after it in that order, one row comparison:

    WHERE (min_price, id) > (19.99, 4321) ORDER BY min_price, id LIMIT 21

An index on (min_price, id) starts right at that row, so page 500 costs
what page 1 does. DRF's CursorPagination, which this class replaces, keys
on the first ordering column only and steps over the rows that tie with it
by OFFSET: with many equal prices a deep page read and threw away every
tied row before it (chapter 05). An ordering must end with a unique column
(the primary key) so that every row has exactly one place; the orderings
of the shop's lists do.

Decoding is strict. Each value of a cursor must be a valid value of its
column (no text for a date, no NaN or 1e400 for a price, no NUL byte, no
id out of bigint's range) and there must be one per ordering column;
anything else is the same 404 "Invalid cursor" as a cursor that does not
decode at all, never a 500 from the database.

A list may be marked `keyset_partition(queryset, field, values)`: the rows
of several values of one column (a category and its subcategories), where
an index leads with that column, (category_id, min_price, id). One range
read of that index cannot return them in price order across categories, so
the planner either sorts every row of the subtree or walks the price index
of the whole catalogue and skips the other categories' rows: the worse the
further the subtree's prices are from the catalogue's. A partitioned page
reads each value's own page from the index (the keyset condition and LIMIT
inside each branch) and merges them:

    WHERE id IN (
        SELECT branch.id FROM unnest('{6,7,8}') AS partition_value (value)
        CROSS JOIN LATERAL (
            SELECT id FROM catalog_product
            WHERE category_id = partition_value.value AND (min_price, id) < (...)
            ORDER BY min_price DESC, id DESC LIMIT 21
        ) AS branch
    )
    ORDER BY min_price DESC, id DESC LIMIT 21

at most page-size rows per value, however deep the page.
"""

import binascii
import math
from base64 import b64decode, b64encode
from collections import namedtuple
from datetime import datetime
from decimal import Decimal
from functools import reduce
from operator import or_
from urllib import parse

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db.models import BooleanField, Expression, F, Q, Value
from django.db.models.expressions import RawSQL
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import remove_query_param, replace_query_param

# reverse: the page before `position` (a previous link), not the one after.
Cursor = namedtuple("Cursor", ["reverse", "position"])

# A cursor is a few short values; a longer one was not made here.
MAX_CURSOR_LENGTH = 2_000


class RowComparison(Expression):
    """`(a, b, c) > (x, y, z)`: SQL's row comparison, as a filter condition.

    Lexicographic, like the ordering itself, and one condition a B-tree on
    (a, b, c) can start its scan from.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, columns, comparison, values):
        if comparison not in ("<", ">"):
            raise ValueError(f"a keyset compares with < or >, not {comparison!r}")
        if len(columns) != len(values):
            raise ValueError("one value per column")
        super().__init__()
        self.columns, self.values = list(columns), list(values)
        self.comparison = comparison

    def get_source_expressions(self):
        return [*self.columns, *self.values]

    def set_source_expressions(self, exprs):
        half = len(exprs) // 2
        self.columns, self.values = list(exprs[:half]), list(exprs[half:])

    def as_sql(self, compiler, connection):
        sides, params = [], []
        for side in (self.columns, self.values):
            parts = []
            for expression in side:
                sql, part_params = compiler.compile(expression)
                parts.append(sql)
                params.extend(part_params)
            sides.append(f"({', '.join(parts)})")
        return f"{sides[0]} {self.comparison} {sides[1]}", params


def _after(ordering, position, fields):
    """The condition "comes after `position` in `ordering`".

    One row comparison when every column runs the same way; for mixed
    directions the equivalent OR of prefixes: a > x OR (a = x AND b < y) ...
    """
    names = [name.lstrip("-") for name in ordering]
    values = [
        Value(value, output_field=field)
        for value, field in zip(position, fields, strict=True)
    ]
    descending = [name.startswith("-") for name in ordering]
    if all(descending) or not any(descending):
        comparison = "<" if descending[0] else ">"
        return RowComparison([F(name) for name in names], comparison, values)
    steps = []
    for index, name in enumerate(names):
        lookup = "lt" if descending[index] else "gt"
        step = Q(**{f"{name}__{lookup}": values[index]})
        for earlier, value in zip(names[:index], values[:index], strict=True):
            step &= Q(**{earlier: value})
        steps.append(step)
    return reduce(or_, steps)


def keyset_partition(queryset, field, values):
    """`queryset` filtered to `field` IN `values`, paged one value at a time.

    See the module's doc. The mark rides on the Query, whose clone copies
    its attributes, so it survives the filters and orderings chained after.
    Mark a list only where an index leads with `field` and continues with
    the ordering: otherwise each branch is a walk of its own.
    """
    values = tuple(values)
    queryset = queryset.filter(**{f"{field}__in": values})
    queryset.query.keyset_partition = (field, values)
    return queryset


def _partitioned(queryset, ordering, condition, limit):
    """The page's rows as the merge of one keyset page per partition value.

    One branch query, compiled once, run for each value by a LATERAL join
    over the values: building and compiling a queryset per category cost
    more Python than the database spent on the page.
    """
    field, values = queryset.query.keyset_partition
    connection = connections[queryset.db]
    # A foreign key's db_type is its target's: bigint for category_id.
    db_type = queryset.model._meta.get_field(field).db_type(connection)
    branch = queryset.filter(**{field: RawSQL("partition_value.value", ())})
    if condition is not None:
        branch = branch.filter(condition)
    branch = branch.order_by(*ordering).values("pk")[:limit]
    # Compiled for the database the page is read from (the router's choice).
    branch_sql, branch_params = branch.query.get_compiler(
        connection=connection
    ).as_sql()
    merged = RawSQL(
        f"SELECT branch.pk FROM unnest(%s::{db_type}[]) AS partition_value (value) "
        f"CROSS JOIN LATERAL ({branch_sql}) AS branch",
        (list(values), *branch_params),
    )
    return queryset.filter(pk__in=merged).order_by(*ordering)[:limit]


def _reversed(ordering):
    return tuple(name[1:] if name.startswith("-") else f"-{name}" for name in ordering)


class SafeCursorPagination(CursorPagination):
    """Keyset pagination over the full ordering tuple (see the module's doc)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        if not self.page_size:
            return None
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self._fields = [self._field(queryset, name) for name in self.ordering]
        self.cursor = self.decode_cursor(request)
        reverse = self.cursor is not None and self.cursor.reverse
        position = self.cursor.position if self.cursor is not None else None

        ordering = _reversed(self.ordering) if reverse else self.ordering
        condition = None
        if position is not None:
            condition = _after(ordering, position, self._fields)
        # One row more than a page says whether there is another page, with
        # no COUNT(*).
        limit = self.page_size + 1
        partition = getattr(queryset.query, "keyset_partition", None)
        if partition is not None and len(partition[1]) > 1:
            rows = list(_partitioned(queryset, ordering, condition, limit))
        else:
            queryset = queryset.order_by(*ordering)
            if condition is not None:
                queryset = queryset.filter(condition)
            rows = list(queryset[:limit])
        more = len(rows) > self.page_size
        self.page = rows[: self.page_size]
        if reverse:
            self.page.reverse()
            self.has_previous, self.has_next = more, True
        else:
            self.has_previous, self.has_next = position is not None, more
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return self.page

    def get_next_link(self):
        if not self.has_next:
            return None
        if not self.page:
            # A page before the first row: the next one is the first page.
            return remove_query_param(self.base_url, self.cursor_query_param)
        return self.encode_cursor(Cursor(False, self._position_of(self.page[-1])))

    def get_previous_link(self):
        if not self.has_previous:
            return None
        if not self.page:
            return self.encode_cursor(Cursor(True, self.cursor.position))
        return self.encode_cursor(Cursor(True, self._position_of(self.page[0])))

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            if len(encoded) > MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            text = b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
            tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=True)
            reverse = {"0": False, "1": True}[tokens.pop("r", ["0"])[-1]]
            raw = tokens.pop("p")
            if tokens or len(raw) != len(self.ordering):
                raise ValueError("not this list's cursor")
            position = tuple(
                self._parse(text, field)
                for text, field in zip(raw, self._fields, strict=True)
            )
        except (KeyError, TypeError, ValueError, UnicodeError, binascii.Error):
            raise NotFound(self.invalid_cursor_message) from None
        return Cursor(reverse, position)

    def encode_cursor(self, cursor):
        tokens = {"p": [_as_text(value) for value in cursor.position]}
        if cursor.reverse:
            tokens["r"] = "1"
        text = parse.urlencode(tokens, doseq=True)
        encoded = b64encode(text.encode("utf-8")).decode("ascii")
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def _position_of(self, row):
        position = []
        for name in self.ordering:
            key = name.lstrip("-")
            value = row[key] if isinstance(row, dict) else getattr(row, key)
            if value is None:
                raise ImproperlyConfigured(
                    f"Keyset pagination on {key!r}, which is NULL in a row: filter "
                    "the NULLs out, or order by a column that has none."
                )
            position.append(value)
        return tuple(position)

    @staticmethod
    def _field(queryset, name):
        """The model field or annotation that ordering column `name` is."""
        key = name.lstrip("-")
        if "__" in key:
            raise ImproperlyConfigured(
                f"Keyset pagination orders by columns of the listed rows, not "
                f"{key!r}: annotate the value and order by the annotation."
            )
        annotation = queryset.query.annotations.get(key)
        if annotation is not None:
            return annotation.output_field
        try:
            if key == "pk":
                return queryset.model._meta.pk
            return queryset.model._meta.get_field(key)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{queryset.model.__name__} has no field or annotation {key!r} "
                "to paginate on."
            ) from None

    @staticmethod
    def _parse(text, field):
        """The value `text` stands for in `field`, or ValueError if it is none."""
        if "\x00" in text:
            raise ValueError("NUL")
        try:
            value = field.to_python(text)
            field.run_validators(value)
        except DjangoValidationError as exc:
            raise ValueError(str(exc)) from None
        if value is None:
            raise ValueError("NULL")
        if isinstance(value, Decimal | float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("a moment without its time zone")
        return value


def _as_text(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        # The shortest text that reads back as the same float: a rank that
        # rounded on the way would put its row on the wrong side.
        return repr(value)
    return str(value)
