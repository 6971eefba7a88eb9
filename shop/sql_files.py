"""Load versioned .sql files for migrations (RunSQL) and selectors."""

from functools import cache
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


@cache
def read_sql(relative_path):
    """Return the text of a .sql file, given relative to the project root."""
    path = BASE_DIR / relative_path
    if path.suffix != ".sql":
        raise ValueError(f"{relative_path} is not a .sql file")
    return path.read_text(encoding="utf-8")


def sql_file(relative_path):
    """A migration operation: RunSQL from a versioned .sql file and its twin.

    `x_v01.sql` is undone by `x_v01_reverse.sql`, next to it: every RunSQL
    has its reverse_sql, and both live where a chapter can show them.
    """
    from django.db import migrations

    return migrations.RunSQL(
        sql=read_sql(relative_path),
        reverse_sql=read_sql(relative_path.replace(".sql", "_reverse.sql")),
    )
