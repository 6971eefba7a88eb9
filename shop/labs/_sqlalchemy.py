"""What the SQLAlchemy and Alembic labs (chapter 16) share: a database URL made
from a Django alias, and SQLAlchemy's echo printed into the lab's story.

SQLAlchemy and Alembic are not the shop's: only these labs, and the Alembic
project under orm/alembic/, use them.
"""

from __future__ import annotations

import logging
import textwrap
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections
from sqlalchemy import URL

from shop.lab import Narrator

# libpq settings of an alias that SQLAlchemy's psycopg dialect passes on as
# they are: the shop's servers accept only TLS connections that verify them.
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "connect_timeout")
# What echo=True turns on (the SQL sent and its parameters), and the log of
# Alembic's runs ("Running upgrade 0001 -> 0002").
ECHO_LOGGERS = ("sqlalchemy.engine.Engine", "alembic.runtime.migration")


def database_url(alias: str, *, database: str | None = None) -> URL:
    """A SQLAlchemy URL for `alias`'s role and server, on its database or `database`.

    The settings come from Django's alias, so under pytest the URL reaches
    the test database, with the role, password and TLS options the shop uses.
    """
    params = connections[alias].get_connection_params()
    host, port = params["host"], params["port"]
    if alias == "default" and getattr(settings, "DATABASE_VIA_PGBOUNCER", False):
        # The labs show an ORM's own pool in front of the server: through
        # pgbouncer in transaction mode a pooled connection is not one
        # server session, so they go to the primary itself.
        primary = urlsplit(settings.DATABASE_URL)
        host, port = primary.hostname, primary.port or 5432
    return URL.create(
        "postgresql+psycopg",
        username=params["user"],
        password=params["password"],
        host=host,
        port=port,
        database=database or params["dbname"],
        query={key: str(params[key]) for key in LIBPQ_OPTIONS if params.get(key)},
    )


class _NarratorHandler(logging.Handler):
    def __init__(self, n: Narrator):
        super().__init__(logging.INFO)
        self.n = n

    def emit(self, record: logging.LogRecord) -> None:
        # SQLAlchemy ends each clause's line with a space; drop it.
        lines = [line.rstrip() for line in record.getMessage().splitlines()]
        self.n.say(textwrap.indent("\n".join(lines), "    echo| "))


@contextmanager
def echo(n: Narrator):
    """Print what SQLAlchemy sends (and Alembic runs) into the lab's story.

    echo=True would set SQLAlchemy's logger to INFO and add a handler that
    writes to stdout; a lab's narrator may be writing elsewhere (a
    transcript), so the lab adds its own handler instead, and keeps the
    records from the root logger, which would print them a second time.
    """
    handler = _NarratorHandler(n)
    saved = []
    for name in ECHO_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
