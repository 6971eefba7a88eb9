"""Least privilege, as the roles the shop really connects with see it.

shop_app (the `default` alias) may read and write rows, nothing more;
shop_readonly (the `readonly` alias, analytics on the replica) may only read.
Every refusal must be PostgreSQL's own: SQLSTATE 42501, insufficient_privilege.
"""

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connections, transaction

pytestmark = pytest.mark.django_db(databases=["default", "owner", "readonly"])

INSUFFICIENT_PRIVILEGE = "42501"
SHOP_TABLES = ["catalog_product", "orders_order", "accounts_customer"]


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
