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
