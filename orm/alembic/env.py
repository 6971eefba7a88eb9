"""How Alembic runs the revisions under versions/: offline or online.

Offline (`alembic upgrade head --sql`) prints the DDL and touches no
database. Online, the connection is the one a caller put into
`config.attributes["connection"]` (the lab does), or one made from
ALEMBIC_DATABASE_URL. No autogenerate: there is no SQLAlchemy metadata to
compare with, the revisions are written by hand.
"""

import logging
import os

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
# Not fileConfig(config.config_file_name), as the generated env.py has: the
# lab runs Alembic inside a Django process, whose logging it would replace.
# From the command line, where nothing has configured logging, say which
# revisions run.
if not logging.getLogger().handlers:
    logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        # Values written into the SQL, since no driver will bind them.
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("ALEMBIC_DATABASE_URL")
    if not url:
        raise SystemExit(
            "set ALEMBIC_DATABASE_URL to a scratch database "
            "(postgresql+psycopg://user:password@host:port/name), or run "
            "`alembic upgrade head --sql` to see the DDL without one"
        )
    # One connection for one run: a pool would only keep it open afterwards.
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        _run(connection)


def _run(connection) -> None:
    # Alembic's default: the whole run in one transaction (Django has one per
    # migration); PostgreSQL's DDL is transactional, so a failed revision
    # leaves nothing half done.
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
