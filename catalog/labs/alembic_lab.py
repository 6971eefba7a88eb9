"""Lab `alembic` (16): one small change to catalog_warehouse, as an Alembic
revision (orm/alembic/) and as Django's AddField, with the DDL each prints;
then Alembic upgrades and downgrades a scratch database for real.

The Django side is what `sqlmigrate` would print for the migration
`makemigrations` would write after adding the field to the model: the
operation applied to the catalog's latest migration state with a schema
editor that collects the SQL instead of running it, which is what
sqlmigrate does. No migration file is written, and the shop's tables are
not touched.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

import alembic
import django
from alembic import command
from alembic.config import Config
from django.conf import settings
from django.db import connections, models
from django.db.migrations import AddField, Migration
from django.db.migrations.loader import MigrationLoader
from psycopg import sql
from sqlalchemy import create_engine, pool, text

from shop.lab import LabFailed, Narrator, connect, lab
from shop.labs._sqlalchemy import database_url, echo

ALEMBIC_INI = settings.BASE_DIR / "orm" / "alembic" / "alembic.ini"
BASELINE = "0001_warehouse_table"
CHANGE = "0002_warehouse_timezone"
# The same column both ways: a nullable varchar(64) whose default lives in
# the database. With `default=` instead, the default stays in Python.
TIMEZONE_DB_DEFAULT = models.CharField(max_length=64, null=True, db_default="UTC")
TIMEZONE_PYTHON_DEFAULT = models.CharField(max_length=64, null=True, default="UTC")
ALEMBIC_ADD_COLUMN = (
    "ALTER TABLE catalog_warehouse ADD COLUMN timezone VARCHAR(64) DEFAULT 'UTC';"
)
DJANGO_ADD_COLUMN = (
    'ALTER TABLE "catalog_warehouse" ADD COLUMN "timezone" varchar(64) '
    "DEFAULT 'UTC' NULL;"
)
COLUMN_SQL = """
SELECT data_type, character_maximum_length, is_nullable, column_default
FROM information_schema.columns
WHERE table_name = 'catalog_warehouse' AND column_name = 'timezone'
"""


def alembic_config(**attributes) -> Config:
    """orm/alembic/alembic.ini, with what Alembic prints kept in `output_buffer`."""
    buffer = io.StringIO()
    config = Config(str(ALEMBIC_INI), output_buffer=buffer, stdout=buffer)
    config.attributes.update(attributes)
    return config


def alembic_offline_sql(direction: str, revisions: str) -> str:
    """What `alembic upgrade|downgrade REVISIONS --sql` prints: no database used."""
    config = alembic_config()
    getattr(command, direction)(config, revisions, sql=True)
    return config.output_buffer.getvalue().strip()


def django_add_field_sql(field: models.Field) -> str:
    """What `sqlmigrate` prints for AddField(warehouse.timezone), from catalog's
    latest migration state. Collected, never run."""
    connection = connections["owner"]  # the alias that migrates (db_routers)
    loader = MigrationLoader(connection)
    (leaf,) = loader.graph.leaf_nodes("catalog")
    state = loader.project_state(leaf)
    migration = Migration("nnnn_warehouse_timezone", "catalog")
    migration.operations = [AddField("warehouse", "timezone", field.clone())]
    with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        migration.apply(state, editor, collect_sql=True)
    statements = editor.collected_sql
    if migration.atomic:  # sqlmigrate wraps an atomic migration the same way
        statements = ["BEGIN;", *statements, "COMMIT;"]
    return "\n".join(statements)


def tool_versions() -> str:
    return f"Alembic {alembic.__version__}, Django {django.get_version()}"


@lab(
    "alembic",
    chapter="16",
    summary="An Alembic revision next to Django's AddField: DDL, upgrade, downgrade",
)
def alembic_lab(n: Narrator) -> None:
    with echo(n):
        _offline(n)
        with _scratch_database(n) as url:
            engine = create_engine(url, poolclass=pool.NullPool)
            try:
                _online(n, engine)
            finally:
                engine.dispose()


def _offline(n: Narrator) -> None:
    n.step("Alembic's revisions (orm/alembic/versions/)")
    config = alembic_config()
    command.history(config)
    n.say(_indent(config.output_buffer.getvalue()))

    n.step(f"Offline: alembic upgrade {BASELINE}:{CHANGE} --sql")
    upgrade = alembic_offline_sql("upgrade", f"{BASELINE}:{CHANGE}")
    n.say(_indent(upgrade))
    n.expect(
        ALEMBIC_ADD_COLUMN in upgrade,
        "the revision is one ALTER TABLE ... ADD COLUMN ... DEFAULT 'UTC', "
        "printed without a database",
    )
    n.expect(
        "UPDATE alembic_version SET version_num='0002_warehouse_timezone'" in upgrade,
        "and one UPDATE of alembic_version, Alembic's record of where the "
        "database stands (Django's is a row per migration in django_migrations)",
    )

    n.step("Django: sqlmigrate of AddField(warehouse.timezone, db_default='UTC')")
    django_sql = django_add_field_sql(TIMEZONE_DB_DEFAULT)
    n.say(_indent(django_sql))
    n.expect(
        DJANGO_ADD_COLUMN in django_sql and "DROP DEFAULT" not in django_sql,
        "the same column and default; Django quotes every name and says NULL",
    )
    n.step("Django: the same field with default='UTC' (a Python-side default)")
    python_default = django_add_field_sql(TIMEZONE_PYTHON_DEFAULT)
    n.say(_indent(python_default))
    n.expect(
        DJANGO_ADD_COLUMN in python_default
        and python_default.count("DROP DEFAULT") == 1,
        "the default fills the existing rows, then is dropped: Django keeps "
        "`default=` in Python, so a row another client inserts gets NULL",
    )


def _online(n: Narrator, engine) -> None:
    n.step(f"Online: alembic upgrade {BASELINE}, and a warehouse")
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), BASELINE)
        conn.execute(
            text(
                "INSERT INTO catalog_warehouse (code, name, is_default) VALUES "
                "('MAIN', 'Main', true)"
            )
        )
        before = conn.scalar(text("SELECT pg_relation_filenode('catalog_warehouse')"))

    n.step(f"Online: alembic upgrade head (to {CHANGE})")
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    with engine.connect() as conn:
        column = conn.execute(text(COLUMN_SQL)).one()
        n.table(["data_type", "length", "nullable", "default"], [column])
        n.expect(
            tuple(column)
            == ("character varying", 64, "YES", "'UTC'::character varying"),
            "the column is there: varchar(64), nullable, DEFAULT 'UTC'",
        )
        after = conn.scalar(text("SELECT pg_relation_filenode('catalog_warehouse')"))
        existing = conn.scalar(text("SELECT timezone FROM catalog_warehouse"))
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    n.say(f"    alembic_version: {version}; the existing row's timezone: {existing!r}")
    n.expect(
        version == CHANGE and existing == "UTC" and after == before,
        "the row inserted before the change reads 'UTC' and the table kept its "
        "file: a constant default is stored once, no row was rewritten",
    )

    n.step(f"Online: alembic downgrade {BASELINE}, then base")
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), BASELINE)
    with engine.connect() as conn:
        gone = conn.execute(text(COLUMN_SQL)).first() is None
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    n.expect(
        gone and version == BASELINE,
        f"downgrade() dropped the column; alembic_version says {BASELINE}",
    )
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
    with engine.connect() as conn:
        table = conn.scalar(text("SELECT to_regclass('catalog_warehouse')"))
        versions = conn.scalar(text("SELECT count(*) FROM alembic_version"))
    n.expect(
        table is None and versions == 0,
        "at base the table is gone and alembic_version is empty (the table "
        "itself stays: Alembic never drops its own bookkeeping)",
    )


@contextmanager
def _scratch_database(n: Narrator):
    """Create a database of the lab's own as shop_owner; drop it at the end.

    Named after the database the owner alias uses (the test database under
    pytest), so that two checkouts on one server never share it. CREATE and
    DROP DATABASE refuse to run in a transaction: an autocommit session.
    """
    owner = connections["owner"].get_connection_params()["dbname"]
    name = f"{owner}_alembic_scratch"
    with connect("owner", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists:
            raise LabFailed(
                f"database {name} already exists: another run of this lab is in "
                f"progress, or one was killed. If none is running: "
                f"DROP DATABASE {name};"
            )
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        n.show_sql(create.as_string(conn), label="as shop_owner: a scratch database")
        conn.execute(create)
        try:
            yield database_url("owner", database=name)
        finally:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            drop = drop.format(sql.Identifier(name))
            n.show_sql(drop.as_string(conn), label="clean up")
            conn.execute(drop)


def _indent(text_: str) -> str:
    return "\n".join(f"    {line}".rstrip() for line in text_.strip().splitlines())
