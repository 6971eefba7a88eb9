"""The database itself: roles, grants and foreign-key rules as the app sees them."""

import pytest
from django.apps import apps
from django.db import connections, models

from tests.dbs import wait_for_replica

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

CONFDELTYPE = {
    models.CASCADE: "c",
    models.PROTECT: "r",
    models.RESTRICT: "r",
    models.SET_NULL: "n",
    models.DO_NOTHING: "a",
}
OUR_APPS = {"accounts", "catalog", "orders", "analytics"}


def test_the_app_connects_as_shop_app_without_superpowers():
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreatedb "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == ("shop_app", False, False, False)


def test_migrations_run_as_shop_owner():
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'catalog_product'"
        )
        assert cursor.fetchone() == ("shop_owner",)


def test_every_foreign_key_has_the_models_on_delete_in_the_database():
    mismatches = []
    with connections["owner"].cursor() as cursor:
        for model in apps.get_models():
            if model._meta.app_label not in OUR_APPS:
                continue
            for field in model._meta.concrete_fields:
                if (
                    not field.is_relation
                    or not field.many_to_one
                    and not field.one_to_one
                ):
                    continue
                cursor.execute(
                    "SELECT confdeltype FROM pg_constraint c JOIN pg_attribute a "
                    "ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
                    "WHERE c.contype = 'f' AND c.conrelid = %s::regclass "
                    "AND a.attname = %s",
                    [model._meta.db_table, field.column],
                )
                (actual,) = cursor.fetchone()
                expected = CONFDELTYPE[field.remote_field.on_delete]
                if actual != expected:
                    mismatches.append(
                        f"{model.__name__}.{field.name}: {actual} != {expected}"
                    )
    assert mismatches == []


def test_every_constraint_of_ours_has_a_readable_name():
    """No hashed or automatic names: a violation message names the rule."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, contype FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace AND contype <> 'p' "
            "AND split_part(conrelid::regclass::text, '_', 1) = ANY(%s)",
            [sorted(OUR_APPS)],
        )
        rows = cursor.fetchall()
    assert rows, "no constraints found"
    # Django's own many-to-many tables for auth groups and permissions are
    # plumbing the shop does not define; a one-to-one's implied UNIQUE keeps
    # PostgreSQL's readable <table>_<column>_key name.
    plumbing = {"accounts_user_groups", "accounts_user_user_permissions"}
    unreadable = [
        (table, name)
        for table, name, kind in rows
        if table not in plumbing
        and (
            not name.startswith(table.split("_")[0] + "_")
            or (kind == "f" and not name.endswith("_fk"))
            or any(
                len(part) == 8 and part.isalnum() and not part.isalpha()
                for part in name.split("_")
            )
        )
    ]
    assert unreadable == []


@pytest.mark.django_db(transaction=True, databases=["default", "owner", "replica"])
def test_the_replica_streams_what_the_primary_commits():
    from tests.catalog.factories import CategoryFactory

    category = CategoryFactory(name="Streamed")
    wait_for_replica()
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone() == (True,)
        cursor.execute("SELECT name FROM catalog_category WHERE id = %s", [category.pk])
        assert cursor.fetchone() == ("Streamed",)


def test_every_security_definer_function_searches_temporary_tables_last():
    """A definer runs with its owner's rights. If its search_path leaves out
    pg_temp, PostgreSQL searches the caller's temporary schema *first*, and a
    TEMP TABLE of a caller's making could stand in for one of the shop's
    (the attack the PostgreSQL manual describes under CREATE FUNCTION)."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, p.proconfig FROM pg_proc AS p"
            " JOIN pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.prosecdef"
            # An extension's own functions (pgaudit's) are its authors' to pin.
            " AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.objid = p.oid"
            " AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e')"
        )
        definers = dict(cursor.fetchall())
    assert "shop_outbox_append" in definers
    unsafe = {
        name: config
        for name, config in definers.items()
        if not any(
            item.startswith("search_path=") and item.strip('"').endswith("pg_temp")
            for item in config or []
        )
    }
    assert unsafe == {}
