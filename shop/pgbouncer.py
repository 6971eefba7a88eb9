"""pgbouncer, seen from the app: a client's connection to it, and its console.

scripts/services.sh starts pgbouncer in transaction mode in front of the
primary; DATABASE_VIA_PGBOUNCER=1 routes `default` through it
(shop/settings/base.py: through_pgbouncer()). The labs and tests use
these helpers to reach it whether or not the app is routed through it.
"""

import re

import psycopg
from django.conf import settings
from django.db import connections

# pgbouncer's admin console parses a database name as a bare word.
DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What the console may be asked here: a fixed list, never input.
SHOW = {"POOLS", "SERVERS", "CLIENTS", "CONFIG", "VERSION", "DATABASES"}


def client_params(alias: str = "default", **overrides) -> dict:
    """Connection parameters of `alias`'s role and database, through pgbouncer."""
    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params |= {"host": settings.PGBOUNCER_HOST, "port": settings.PGBOUNCER_PORT}
    return params | overrides


def connect(alias: str = "default", **overrides) -> psycopg.Connection:
    """A new client connection to pgbouncer as `alias`'s role, in autocommit."""
    return psycopg.connect(**client_params(alias, autocommit=True, **overrides))


def admin() -> psycopg.Connection:
    """A connection to pgbouncer's admin console (the virtual database pgbouncer).

    The console speaks the simple query protocol only, hence a client-side
    binding cursor, which sends each statement as one simple query.
    """
    return psycopg.connect(
        host=settings.PGBOUNCER_HOST,
        port=settings.PGBOUNCER_PORT,
        dbname="pgbouncer",
        user=settings.PGBOUNCER_ADMIN_USER,
        password=settings.PGBOUNCER_ADMIN_PASSWORD,
        sslmode=settings.DB_SSLMODE,
        sslrootcert=settings.DB_SSLROOTCERT or None,
        connect_timeout=2,
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    )


def show(what: str, console: psycopg.Connection | None = None) -> list[dict]:
    """The rows of the console's SHOW `what`, as dicts."""
    if what not in SHOW:
        raise ValueError(f"SHOW {what} is not one of {sorted(SHOW)}")
    own = console is None
    console = console or admin()
    try:
        with console.cursor() as cursor:
            cursor.execute(f"SHOW {what}")  # from SHOW above, never input
            columns = [column.name for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        if own:
            console.close()


def config() -> dict[str, str]:
    """pgbouncer's running settings, by name."""
    return {row["key"]: row["value"] for row in show("CONFIG")}


def server_connections(database: str) -> list[dict]:
    """pgbouncer's connections to the server for `database`."""
    return [row for row in show("SERVERS") if row["database"] == database]


def _checked(name: str) -> str:
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a database name pgbouncer's console takes: {name!r}")
    return name


def reconnect(name: str) -> None:
    """Replace every server connection for database `name` once it is released.

    Whatever a session left on them (a SET, a cursor WITH HOLD) goes with
    them: the pgbouncer lab leaves nothing behind for the app's clients.
    """
    with admin() as console:
        console.execute(f"RECONNECT {_checked(name)}")  # a checked bare name


def release_database(name: str) -> bool:
    """Close every connection pgbouncer holds for database `name`, at once.

    Server connections stay open in pgbouncer's pool after their clients
    leave, and PostgreSQL refuses to drop a database someone is connected
    to: the test suite's teardown calls this before dropping its database.
    KILL closes them, and the clients' too; RESUME lets new clients in
    again. False when pgbouncer does not answer: then it holds nothing.
    """
    _checked(name)
    try:
        console = admin()
    except psycopg.OperationalError:
        return False
    with console:
        if not any(row["name"] == name for row in show("DATABASES", console)):
            return True
        console.execute(f"KILL {name}")  # a checked bare name, as above
        console.execute(f"RESUME {name}")
    return True
