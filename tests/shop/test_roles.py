"""Least privilege, as the roles the shop really connects with see it.

shop_app (the `default` alias) may read and write rows, nothing more;
shop_readonly (the `readonly` alias, analytics on the replica) may only read;
shop_loader (the seed's COPY) may read and append to the tables the seed
phases fill, and nothing else: it bypasses row-level security, so its grants
are all that keeps it from every customer's rows. shop_monitor (the `monitor`
alias) reads the statistics views and every role's statements in
pg_stat_statements (pg_read_all_stats), and no table at all.
Every refusal must be PostgreSQL's own: SQLSTATE 42501, insufficient_privilege.
"""

import re

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connections, transaction

from shop.seeding.phases import seeded_models

pytestmark = pytest.mark.django_db(databases=["default", "owner", "readonly"])

INSUFFICIENT_PRIVILEGE = "42501"
SHOP_TABLES = ["catalog_product", "orders_order", "accounts_customer"]
# Written by the loader though no phase names it: the stock ledger's trigger
# (orders/sql/triggers/stock_ledger_v01.sql) appends as whoever writes stock,
# the loader when the catalogue phase copies it in; the search postings'
# trigger (catalog/sql/triggers/search_posting_v01.sql) likewise when it
# copies the products.
LOADER_APPENDS_THROUGH_A_TRIGGER = {
    "orders_stock_movement": ["INSERT"],
    "catalog_search_posting": ["INSERT"],
}
# Every privilege shop_loader holds on a relation or sequence of public,
# leaving out extensions' objects (pg_stat_statements' views, granted to
# PUBLIC by the extension), which are the cluster's, not the shop's.
LOADER_PRIVILEGES_SQL = """
SELECT c.relname, array_agg(p.privilege ORDER BY p.privilege)
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN unnest(%(privileges)s::text[]) AS p(privilege)
WHERE n.nspname = 'public'
  AND c.relkind = ANY(%(kinds)s::"char"[])
  AND NOT EXISTS (
      SELECT FROM pg_depend AS d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND CASE WHEN c.relkind = 'S'
           THEN has_sequence_privilege('shop_loader', c.oid, p.privilege)
           ELSE has_table_privilege('shop_loader', c.oid, p.privilege) END
GROUP BY c.relname
"""
TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"]
TABLE_PRIVILEGES += ["REFERENCES", "TRIGGER"]
TABLE_KINDS = ["r", "p", "v", "m", "f"]


def sqlstate_of_app(sql):
    """Run `sql` as shop_app in a savepoint and return the SQLSTATE it fails with."""
    try:
        with (
            transaction.atomic(using="default"),
            connections["default"].cursor() as cursor,
        ):
            cursor.execute(sql)
    except DatabaseError as exc:
        return getattr(exc.__cause__, "sqlstate", None)
    return None


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE shop_roles_probe (id integer)",
        "DROP TABLE catalog_product",
        "ALTER TABLE catalog_product ADD COLUMN shop_roles_probe integer",
        "TRUNCATE catalog_product CASCADE",
        "CREATE ROLE shop_roles_probe",
        "INSERT INTO django_migrations (app, name, applied) "
        "VALUES ('shop', 'probe', now())",
        "UPDATE django_migrations SET name = name",
        "DELETE FROM django_migrations",
    ],
    ids=lambda sql: " ".join(sql.split()[:2]).lower(),
)
def test_the_app_role_cannot_change_the_schema_or_the_migration_record(sql):
    assert sqlstate_of_app(sql) == INSUFFICIENT_PRIVILEGE


def test_the_app_role_has_no_role_attributes_beyond_login():
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == ("shop_app", False, False, False, False)


def test_the_readonly_alias_reads_the_replica_as_shop_readonly():
    with connections["readonly"].cursor() as cursor:
        cursor.execute("SELECT current_user, pg_is_in_recovery()")
        assert cursor.fetchone() == ("shop_readonly", True)
        for table in SHOP_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # names from the list
            assert cursor.fetchone()[0] >= 0


def test_the_readonly_role_runs_no_jit_and_cuts_long_statements_off():
    # Role settings (scripts/sql/roles.sql), as a new session of the role
    # gets them: a report inherits them on the replica.
    with connections["readonly"].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('jit'), current_setting('statement_timeout')"
        )
        assert cursor.fetchone() == ("off", "1min")


@pytest.fixture
def readonly_on_primary():
    """shop_readonly on the primary's test database.

    On the replica every write fails with 25006 (read-only transaction)
    whatever the role may do, so the privilege itself is tested here.
    """
    params = connections["owner"].get_connection_params()
    readonly = settings.DATABASES["readonly"]
    params.update(user=readonly["USER"], password=readonly["PASSWORD"])
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("table", SHOP_TABLES)
def test_the_readonly_role_can_select_but_not_write(readonly_on_primary, table):
    with readonly_on_primary.cursor() as cursor:
        cursor.execute("SELECT current_user, pg_is_in_recovery()")
        assert cursor.fetchone() == ("shop_readonly", False)
        cursor.execute(f"SELECT count(*) FROM {table}")
        for sql in (
            f"INSERT INTO {table} DEFAULT VALUES",
            f"UPDATE {table} SET id = id",
            f"DELETE FROM {table}",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cursor.execute(sql)


def loader_privileges(kinds, privileges) -> dict[str, list[str]]:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            LOADER_PRIVILEGES_SQL, {"kinds": kinds, "privileges": privileges}
        )
        return dict(cursor.fetchall())


def seeded_tables() -> list[str]:
    return [model._meta.db_table for model in seeded_models()]


def test_the_loader_reads_and_appends_to_exactly_the_seeded_tables():
    # Against the phases' own declaration of what they fill: a phase whose
    # app forgets a grant fails here, and so does a grant no phase needs.
    expected = {table: ["INSERT", "SELECT"] for table in seeded_tables()}
    expected |= LOADER_APPENDS_THROUGH_A_TRIGGER

    assert loader_privileges(TABLE_KINDS, TABLE_PRIVILEGES) == expected


def test_the_loader_numbers_rows_only_from_the_seeded_tables_sequences():
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_serial_sequence(t, 'id')::regclass::text "
            "FROM unnest(%s::text[]) AS t",
            [seeded_tables()],
        )
        expected = {sequence: ["USAGE"] for (sequence,) in cursor.fetchall()}

    # USAGE is nextval(), all reserve_ids.sql calls; never setval() (UPDATE).
    assert loader_privileges(["S"], ["USAGE", "SELECT", "UPDATE"]) == expected


def test_a_table_created_later_is_out_of_the_loaders_reach():
    # No default privileges for the loader: each app grants its own tables.
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "CREATE TABLE shop_roles_later "
            "(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)"
        )
        cursor.execute(
            "SELECT has_table_privilege('shop_loader', 'shop_roles_later', 'SELECT'),"
            " has_table_privilege('shop_loader', 'shop_roles_later', 'INSERT'),"
            " has_sequence_privilege('shop_loader',"
            "  pg_get_serial_sequence('shop_roles_later', 'id'), 'USAGE'),"
            " has_table_privilege('shop_app', 'shop_roles_later', 'INSERT')"
        )
        # The app's own default privileges still hold: only the loader's went.
        assert cursor.fetchone() == (False, False, False, True)


# --- shop_monitor: the statistics, every role's statement text, no rows -------
# Every privilege a role holds on a relation or sequence of public, leaving
# out extensions' objects (pg_stat_statements' views, granted to PUBLIC).
ROLE_PRIVILEGES_SQL = LOADER_PRIVILEGES_SQL.replace("'shop_loader'", "%(role)s")


@pytest.fixture
def monitor():
    """A connection as the `monitor` alias connects: shop_monitor, the test database."""
    params = connections["monitor"].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


def test_the_monitor_alias_is_shop_monitor_on_the_primary_over_tls(monitor):
    row = monitor.execute(
        "SELECT current_user, current_database(), pg_is_in_recovery(), ssl "
        "FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).fetchone()
    owner = connections["owner"].settings_dict["NAME"]
    assert row == ("shop_monitor", owner, False, True)
    # A look at the statistics that runs long is cut off (scripts/sql/roles.sql).
    timeout = monitor.execute("SELECT current_setting('statement_timeout')")
    assert timeout.fetchone() == ("10s",)


def test_the_monitor_role_is_in_pg_read_all_stats_and_nothing_else():
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, "
            "rolreplication, rolbypassrls FROM pg_roles WHERE rolname = 'shop_monitor'"
        )
        assert cursor.fetchone() == (True, False, False, False, False, False)
        cursor.execute(
            "SELECT array_agg(m.roleid::regrole::text) FROM pg_auth_members AS m "
            "WHERE m.member = 'shop_monitor'::regrole"
        )
        assert cursor.fetchone()[0] == ["pg_read_all_stats"]
        # Nobody is a member of it either: its grants are its own.
        cursor.execute(
            "SELECT count(*) FROM pg_auth_members "
            "WHERE roleid = 'shop_monitor'::regrole"
        )
        assert cursor.fetchone()[0] == 0


def test_the_monitor_role_holds_no_privilege_on_any_table_or_sequence():
    with connections["owner"].cursor() as cursor:
        for kinds, privileges in (
            (TABLE_KINDS, TABLE_PRIVILEGES),
            (["S"], ["USAGE", "SELECT", "UPDATE"]),
        ):
            cursor.execute(
                ROLE_PRIVILEGES_SQL,
                {"role": "shop_monitor", "kinds": kinds, "privileges": privileges},
            )
            assert cursor.fetchall() == []


@pytest.mark.parametrize("table", SHOP_TABLES)
def test_the_monitor_role_can_neither_read_nor_write_the_shops_tables(monitor, table):
    for sql in (
        f"SELECT count(*) FROM {table}",
        f"INSERT INTO {table} DEFAULT VALUES",
        f"UPDATE {table} SET id = id",
        f"DELETE FROM {table}",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            monitor.execute(sql)


def test_the_monitor_role_reads_the_statement_text_of_every_role(
    monitor, readonly_on_primary
):
    statement = "SELECT count(*) FROM catalog_product"
    with connections["default"].cursor() as cursor:
        # Many calls: when pg_stat_statements is full (pg_stat_statements.max
        # entries, easily reached by a whole test run's databases), a new
        # entry evicts the least used ones, and one call is the least.
        for _ in range(50):
            cursor.execute(statement)
        # The entry is found by its query id, which EXPLAIN VERBOSE shows:
        # its text is the first run's, which may be the ORM's
        # `SELECT COUNT(*) AS "__count" FROM "catalog_product"`, the same
        # statement to pg_stat_statements (aliases and quotes aside).
        cursor.execute(f"EXPLAIN (VERBOSE) {statement}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    (queryid,) = re.findall(r"Query Identifier: (-?\d+)", plan)
    entries = (
        "SELECT r.rolname, s.query FROM pg_stat_statements AS s "
        "JOIN pg_roles AS r ON r.oid = s.userid "
        "WHERE s.queryid = %s AND s.dbid = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())"
    )

    # One entry per role that ran it (another test runs it as shop_readonly).
    texts = dict(monitor.execute(entries, [int(queryid)]).fetchall())
    assert "catalog_product" in texts["shop_app"]
    # Without pg_read_all_stats another role's entries are there, but their
    # text and query id are not: shop_readonly finds its own entry of this
    # statement, if it ran it, and not the app's.
    own = dict(readonly_on_primary.execute(entries, [int(queryid)]).fetchall())
    assert "shop_app" not in own
    hidden = readonly_on_primary.execute(
        "SELECT count(*) FROM pg_stat_statements WHERE userid = 'shop_app'::regrole"
        " AND query = '<insufficient privilege>' AND queryid IS NULL"
    ).fetchone()[0]
    assert hidden > 0
