"""Sharding on PostgreSQL's own engine (chapter 15): hash partitions on postgres_fdw.

The order archive, `shards.order_history` on the primary, is partitioned by
HASH (customer_id) into two partitions. Each partition is a foreign table:
its rows live on a shard, a small cluster of its own that
`scripts/services.sh shards up` starts (127.0.0.1:55434 and :55435). The
primary routes each inserted row to the shard its hash names, prunes a
lookup by customer to one shard, and ships WHERE clauses and (some)
aggregates there. It commits the shards' transactions when its own
commits, one shard after the other, without two-phase commit.

`shards_setup` makes the whole of it, for the database of one alias (the
development database, or a test run's); `shards_teardown` removes it. Both
act as the clusters' superuser over their Unix sockets, as
scripts/services.sh does: only a superuser may create postgres_fdw or a
foreign server, and the project's own clusters trust local connections on
their sockets (over TCP every role needs its password). Nothing in the
shop's migrations depends on the archive: the shop runs without shards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connections
from psycopg import sql

from shop.local_clusters import socket_dir
from shop.sql_files import read_sql

SQL_DIR = "analytics/sql/shards/"
ARCHIVE = "shards.order_history"
# The role the primary's user mappings log in as, on every shard. The same
# variables as scripts/services.sh, with the same defaults.
SHARD_ROLE = "shop_shard"
SHARD_PASSWORD = os.environ.get("SHOP_SHARD_PASSWORD", "shop_shard")
SHARD_HOST = "127.0.0.1"
# The database `scripts/services.sh shards up` makes on each shard for the
# development database: teardown empties it rather than dropping it.
SERVICES_DATABASE = os.environ.get("SHOP_DB_NAME", "shop")
START_HINT = "Start them with `scripts/services.sh shards up`."
SETUP_HINT = "Run `python manage.py shards setup`."
PRIMARY_HINT = "Start it with `scripts/services.sh up`."


class ShardsUnavailable(Exception):
    """A shard, or the primary's superuser socket, does not answer."""


@dataclass(frozen=True)
class Shard:
    """One shard: where it runs, and the hash partition it holds."""

    name: str
    port: int
    remainder: int

    @property
    def server(self) -> str:
        """The foreign server that stands for this shard on the primary."""
        return f"shop_{self.name}"

    @property
    def partition(self) -> str:
        """The archive's foreign partition whose rows live here."""
        return f"order_history_{self.name}"


# MODULUS 2: customer_id's hash, modulo 2, picks the shard. A third shard
# would split a partition (remainder 0 of 2 into remainders 0 and 2 of 4) and
# move about half of its rows, by hand: nothing here rebalances (chapter 15).
SHARDS = (
    Shard("shard1", int(os.environ.get("SHOP_SHARD1_PORT", "55434")), remainder=0),
    Shard("shard2", int(os.environ.get("SHOP_SHARD2_PORT", "55435")), remainder=1),
)
MODULUS = len(SHARDS)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def superuser(
    port: int, database: str, *, what: str, hint: str = START_HINT
) -> Iterator[psycopg.Connection]:
    """The cluster superuser on the server at `port`, over its Unix socket.

    `what` names the server in the error ("shard1"), `hint` how to start it.
    """
    try:
        conn = psycopg.connect(
            host=str(socket_dir()),
            port=port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        raise ShardsUnavailable(
            f"{what} does not answer on its socket in {socket_dir()} "
            f"(port {port}): {_first_line(exc)}. {hint}"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def shard_connect(shard: Shard, database: str) -> psycopg.Connection:
    """Connect to `shard` as shop_shard, over TLS, as the primary's mappings do.

    For reading a shard directly: counting the rows the primary routed there.
    """
    options = {"sslmode": settings.DB_SSLMODE}
    if settings.DB_SSLROOTCERT:
        options["sslrootcert"] = settings.DB_SSLROOTCERT
    try:
        return psycopg.connect(
            host=SHARD_HOST,
            port=shard.port,
            user=SHARD_ROLE,
            password=SHARD_PASSWORD,
            dbname=database,
            autocommit=True,
            connect_timeout=5,
            **options,
        )
    except psycopg.OperationalError as exc:
        # A shard that runs but lacks this database has not been set up.
        hint = SETUP_HINT if "does not exist" in str(exc) else START_HINT
        raise ShardsUnavailable(
            f"{shard.name} refused a connection on {SHARD_HOST}:{shard.port} "
            f"(database {database}): {_first_line(exc)}. {hint}"
        ) from exc


def shards_check() -> None:
    """Raise ShardsUnavailable, saying how to start them, unless both shards answer."""
    for shard in SHARDS:
        shard_connect(shard, "postgres").close()


def archive_partitions(*, using: str = "default") -> list[tuple]:
    """(partition, bound, server, port) of each foreign partition; [] before setup."""
    with connections[using].cursor() as cursor:
        cursor.execute(read_sql(SQL_DIR + "archive_partitions_v01.sql"))
        return cursor.fetchall()


def archive_ready(*, using: str = "default") -> bool:
    """True if `using`'s database has the archive and one partition per shard."""
    found = {row[0] for row in archive_partitions(using=using)}
    return found == {shard.partition for shard in SHARDS}


def _database(using: str) -> tuple[str, int]:
    """The database name and port of `using`, which must be the local primary.

    Under pytest the name is the test database's: Django renames it there.
    """
    params = connections[using].settings_dict
    if params["HOST"] not in {"127.0.0.1", "localhost", ""}:
        raise ShardsUnavailable(
            f"the shards work with the project's own clusters only "
            f"(scripts/services.sh); {using!r} points at {params['HOST']}."
        )
    return params["NAME"], int(params["PORT"] or 5432)


def _template(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(read_sql(SQL_DIR + name)).format(**parts)


def _shard_database_exists(conn: psycopg.Connection, database: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", [database]
    ).fetchone()
    return row is not None


def shards_setup(*, using: str = "owner") -> list[str]:
    """Create the order archive for `using`'s database, on the shards and here.

    Idempotent: each shard's database and table are made when missing and
    kept otherwise (they hold the rows); the primary's servers, mappings
    and foreign partitions are replaced in one transaction, so a second run
    changes nothing but picks up new ports or passwords. Returns what it did.
    """
    database, port = _database(using)
    done = []
    for shard in SHARDS:
        with superuser(shard.port, "postgres", what=shard.name) as conn:
            if not _shard_database_exists(conn, database):
                conn.execute(
                    _template(
                        "shard_database_v01.sql", database=sql.Identifier(database)
                    )
                )
                done.append(f"{shard.name}: created database {database}")
        with superuser(shard.port, database, what=shard.name) as conn:
            conn.execute(read_sql(SQL_DIR + "shard_table_v01.sql"))
        done.append(f"{shard.name}: table order_history ready ({shard.port})")
    with (
        superuser(port, database, what="the primary", hint=PRIMARY_HINT) as conn,
        conn.transaction(),
    ):
        conn.execute(read_sql(SQL_DIR + "archive_v01.sql"))
        for shard in SHARDS:
            conn.execute(_shard_ddl(shard, database))
            conn.execute(_mapping_ddl(shard))
            done.append(
                f"primary: {ARCHIVE} remainder {shard.remainder} of {MODULUS} "
                f"-> {shard.server} ({SHARD_HOST}:{shard.port}/{database})"
            )
    return done


def _shard_ddl(shard: Shard, database: str) -> sql.Composed:
    return _template(
        "archive_shard_v01.sql",
        server=sql.Identifier(shard.server),
        host=sql.Literal(SHARD_HOST),
        port=sql.Literal(str(shard.port)),
        dbname=sql.Literal(database),
        sslmode=sql.Literal(settings.DB_SSLMODE),
        sslrootcert=sql.Literal(settings.DB_SSLROOTCERT),
        partition=sql.Identifier("shards", shard.partition),
        modulus=sql.Literal(MODULUS),
        remainder=sql.Literal(shard.remainder),
    )


def _mapping_ddl(shard: Shard) -> sql.Composed:
    return _template(
        "archive_mapping_v01.sql",
        server=sql.Identifier(shard.server),
        user=sql.Literal(SHARD_ROLE),
        password=sql.Literal(SHARD_PASSWORD),
    )


def shards_teardown(*, using: str = "owner") -> list[str]:
    """Remove the order archive from `using`'s database, and its rows from the shards.

    Each shard's database for `using`'s goes too, unless scripts/services.sh
    made it (SERVICES_DATABASE): that one keeps its database and loses its
    table. A shard that is not running keeps both, and the result says so.
    """
    database, port = _database(using)
    servers = sql.SQL(", ").join(sql.Identifier(shard.server) for shard in SHARDS)
    with (
        superuser(port, database, what="the primary", hint=PRIMARY_HINT) as conn,
        conn.transaction(),
    ):
        conn.execute(_template("archive_teardown_v01.sql", servers=servers))
    names = ", ".join(shard.server for shard in SHARDS)
    done = [f"primary: dropped {ARCHIVE} and the servers {names}"]
    for shard in SHARDS:
        try:
            done.append(_shard_teardown(shard, database))
        except ShardsUnavailable as exc:
            done.append(f"{shard.name}: not reached, database {database} kept ({exc})")
    return done


def _shard_teardown(shard: Shard, database: str) -> str:
    if database == SERVICES_DATABASE:
        with superuser(shard.port, "postgres", what=shard.name) as conn:
            if not _shard_database_exists(conn, database):
                return f"{shard.name}: no database {database}"
        with superuser(shard.port, database, what=shard.name) as conn:
            conn.execute(read_sql(SQL_DIR + "shard_table_drop_v01.sql"))
        return f"{shard.name}: dropped table order_history, kept database {database}"
    with superuser(shard.port, "postgres", what=shard.name) as conn:
        conn.execute(
            _template("shard_database_drop_v01.sql", database=sql.Identifier(database))
        )
    return f"{shard.name}: dropped database {database}"
