"""Bulk writes with PostgreSQL COPY, the one path every scale takes.

COPY streams rows in a single statement, so 100,000 products cost about
what 100 do per row, where INSERTs pay a round trip (or a huge statement)
per batch. It returns no ids, which is why the keys that later rows point
at are taken from the sequence first (sql/reserve_ids.sql).
"""

from collections import Counter
from collections.abc import Iterable, Sequence

from psycopg import sql

from shop.sql_files import read_sql

# Updating a progress bar per row would cost more than writing the row.
PROGRESS_STEP = 2_000


class CopyWriter:
    """COPY rows through one cursor, counting them per table and on one progress bar."""

    def __init__(self, cursor, progress):
        self.cursor = cursor
        self.progress = progress
        self.counts: Counter[str] = Counter()

    @property
    def using(self) -> str:
        """The alias whose transaction the writer is in, for ORM reads within it."""
        return self.cursor.db.alias

    def reserve_ids(self, model, count: int) -> list[int]:
        """Return `count` fresh primary keys for `model`, taken from its sequence.

        Keys from the sequence itself leave it consistent with the table, so
        the app's next INSERT never collides with a seeded row, and nothing
        has to run setval() afterwards.
        """
        if count == 0:
            return []
        self.cursor.execute(
            read_sql("shop/seeding/sql/reserve_ids.sql"),
            {"table": model._meta.db_table, "count": count},
        )
        return [row[0] for row in self.cursor.fetchall()]

    def expect_more_rows(self, remaining: int) -> None:
        """Correct the progress bar's estimate: `remaining` rows are still to come."""
        self.progress.total = sum(self.counts.values()) + remaining
        self.progress.refresh()

    def copy(self, model, fields: Sequence[str], rows: Iterable[Sequence]) -> int:
        """COPY `rows` (values in the order of `fields`) into `model`'s table."""
        statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
            table=sql.Identifier(model._meta.db_table),
            columns=sql.SQL(", ").join(
                sql.Identifier(_column(model, name)) for name in fields
            ),
        )
        written = 0
        # Django's cursor passes copy() straight through to psycopg's cursor,
        # inside the transaction the caller opened on this connection.
        with self.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
                if written % PROGRESS_STEP == 0:
                    self.progress.update(PROGRESS_STEP)
        self.progress.update(written % PROGRESS_STEP)
        self.counts[model._meta.db_table] += written
        return written


def _column(model, field_name: str) -> str:
    field = model._meta.get_field(field_name)
    if getattr(field, "generated", False):
        # PostgreSQL computes it (GENERATED ... STORED) and rejects writes.
        raise ValueError(f"{model.__name__}.{field_name} is generated: never write it")
    return field.column
