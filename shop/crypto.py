"""Keys for the columns encrypted at rest with pgcrypto (a customer's tax id).

FIELD_ENCRYPTION_KEYS holds comma-separated `id:secret` pairs, for example
`2:new-secret,1:old-secret`. The first pair is the current key: every new
write uses it. The others only decrypt rows that `rotate_field_keys` has not
yet moved to the current key. Each encrypted row stores the id of its key
(never the key), so keys can be rotated one batch of rows at a time.

The secrets live in the environment only. They travel to PostgreSQL as
query parameters, so they appear in no table, no migration and no SQL file.
They could still reach the server's log: statement logging
(`log_min_duration_statement` >= 0, or `log_statement = 'all'`) also logs a
statement's parameters, up to `log_parameter_max_length` bytes (-1, the
default, means all of them). The shop's primary logs statements slower
than 100 ms for pgBadger (scripts/pg/logging.conf, chapter 24), so it sets
`log_parameter_max_length = 0` and `log_parameter_max_length_on_error = 0`:
no parameter reaches the log, slow or failed (tests/shop/test_pglog.py
proves it with a bound secret). pg_stat_statements stores only the
placeholders.

That holds only for real parameters. Django binds parameters on the client
by default (psycopg's ClientCursor): the key would be spliced into the
statement text, which PostgreSQL logs whenever the statement fails
(`log_min_error_statement = error`, e.g. on a wrong key) and shows in
pg_stat_activity. `execute_with_keys` therefore sends these statements with
server-side binding: the text holds `$1`, the key goes in the bind message.
"""

from functools import cache

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

# The key id is stored in a smallint column.
KEY_ID_RANGE = range(1, 32768)


@cache
def parse_field_keys(raw: str) -> dict[int, str]:
    """Return {key id: secret} in the order given; the first is the current key."""
    keys: dict[int, str] = {}
    for pair in (part.strip() for part in (raw or "").split(",")):
        key_id, separator, secret = pair.partition(":")
        if not separator or not key_id.strip().isdigit() or not secret:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS has {pair!r}: write comma-separated "
                "id:secret pairs, the current key first, e.g. '2:new,1:old'."
            )
        number = int(key_id)
        if number not in KEY_ID_RANGE or number in keys:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key id {number} is repeated or outside "
                f"{KEY_ID_RANGE.start}..{KEY_ID_RANGE.stop - 1}; give each key "
                "its own id."
            )
        keys[number] = secret
    return keys


def field_keys() -> dict[int, str]:
    # Read on every call, not at import: override_settings and a changed
    # environment after a restart both take effect.
    return parse_field_keys(settings.FIELD_ENCRYPTION_KEYS)


def current_key_id() -> int:
    """The id of the key that encrypts every new value."""
    return next(iter(field_keys()))


def current_key() -> tuple[int, str]:
    """The current key as (id, secret)."""
    key_id = current_key_id()
    return key_id, field_keys()[key_id]


def key_by_id(key_id: int) -> str:
    """The secret of key `key_id`, which rows written under it need to decrypt."""
    try:
        return field_keys()[key_id]
    except KeyError:
        raise ImproperlyConfigured(
            f"Data is encrypted with key {key_id}, which FIELD_ENCRYPTION_KEYS "
            "no longer lists. Add it back (after the current key) and run "
            "`python manage.py rotate_field_keys` before removing it."
        ) from None


def execute_with_keys(
    sql: str, params: dict, *, using: str = "default"
) -> tuple[int, list[tuple]]:
    """Run SQL whose parameters carry a key, bound server-side: (rowcount, rows).

    The statement joins the connection's current transaction, if any, and
    bypasses Django's cursor wrapper, whose debug log and `connection.queries`
    would record the parameters. Errors are Django's (IntegrityError, ...).
    """
    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.rowcount, rows
