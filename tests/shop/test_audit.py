"""The audit trail: shop_audit_log, written by triggers, append-only for everyone.

The app cannot read the log, so the tests read it as the owner; a change
must therefore be committed before the owner's connection sees its entry,
which is why the tests that make changes through `default` are
transactional. The log is no model: the test runner's flush never empties
it, so every test reads only the entries written after its own `mark`.
"""

import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from rest_framework.authtoken.models import Token

from shop.accounts.models import Address, User
from shop.db_context import customer_transaction, staff_transaction
from tests.accounts.factories import AddressFactory, UserFactory
from tests.dbs import ALL_DATABASES

commits = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
AUDITED_TABLES = {
    "accounts_user",
    "accounts_customer",
    "accounts_address",
    "orders_order",
    "orders_payment",
    "orders_coupon",
    "authtoken_token",
}
ENTRY_COLUMNS = (
    "table_name",
    "row_pk",
    "action",
    "old_row",
    "new_row",
    "db_role",
    "session_role",
    "app_user_id",
    "app_customer_id",
)


def mark() -> int:
    """Return the id of the newest entry; entries after it are the test's own."""
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) FROM shop_audit_log")
        return cursor.fetchone()[0]


def entries_since(last_id: int, **filters) -> list[dict]:
    """Return the entries after `last_id` (optionally filtered), oldest first."""
    conditions = "".join(f" AND {column} = %s" for column in filters)
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(ENTRY_COLUMNS)} FROM shop_audit_log "
            f"WHERE id > %s{conditions} ORDER BY id",
            [last_id, *filters.values()],
        )
        rows = [dict(zip(ENTRY_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        # Django reads jsonb as text and leaves decoding to JSONField.
        for column in ("old_row", "new_row"):
            if isinstance(row[column], str):
                row[column] = json.loads(row[column])
    return rows


def log_text_since(last_id: int) -> str:
    """Return every entry after `last_id` as one text, each column included."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(to_jsonb(a)::text, E'\\n') FROM shop_audit_log AS a "
            "WHERE id > %s",
            [last_id],
        )
        return cursor.fetchone()[0] or ""


def refused(alias, statement, params=None, *, match=None) -> str:
    """Run `statement` in a savepoint, expect it to fail; return its SQLSTATE."""
    with (
        pytest.raises(DatabaseError, match=match) as excinfo,
        transaction.atomic(using=alias),
        connections[alias].cursor() as cursor,
    ):
        cursor.execute(statement, params)
    return excinfo.value.__cause__.sqlstate


@commits
def test_an_address_update_logs_the_changed_columns_the_role_and_the_customer():
    address = AddressFactory(city="Oldtown")
    customer = address.customer
    before = mark()

    with customer_transaction(customer.pk, user_id=customer.user_id):
        address.city = "Newtown"
        address.save()  # writes every column: the log keeps only the changed one
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text")
            (txid,) = cursor.fetchone()

    assert _txids_since(before) == [txid]
    assert entries_since(before) == [
        {
            "table_name": "accounts_address",
            "row_pk": str(address.pk),
            "action": "UPDATE",
            "old_row": {"city": "Oldtown"},
            "new_row": {"city": "Newtown"},
            "db_role": "shop_app",
            "session_role": "shop_app",
            "app_user_id": customer.user_id,
            "app_customer_id": customer.pk,
        }
    ]


@commits
def test_inserts_and_deletes_keep_whole_rows_and_no_change_logs_nothing():
    created = mark()
    address = AddressFactory(city="Wholetown")
    inserted = entries_since(created, table_name="accounts_address")
    before = mark()

    with staff_transaction():
        address.save()  # the same values again: nothing changed
        Address.objects.filter(pk=address.pk).delete()

    assert [entry["action"] for entry in inserted] == ["INSERT"]
    assert inserted[0]["new_row"]["city"] == "Wholetown"
    assert inserted[0]["old_row"] is None
    (deleted,) = entries_since(before)
    assert deleted["action"] == "DELETE"
    assert deleted["old_row"] == inserted[0]["new_row"]
    assert deleted["new_row"] is None
    # Staff act for no customer, and no user was named.
    assert (deleted["app_customer_id"], deleted["app_user_id"]) == (None, None)


@commits
def test_one_statement_that_changes_many_rows_logs_each_of_them():
    first = AddressFactory(postal_code="11111")
    second = AddressFactory(customer=first.customer, postal_code="22222")
    before = mark()

    with customer_transaction(first.customer_id):
        changed = Address.objects.filter(customer=first.customer).update(
            postal_code="33333"
        )

    entries = entries_since(before)
    assert changed == 2
    assert sorted((e["row_pk"], e["old_row"]["postal_code"]) for e in entries) == [
        (str(first.pk), "11111"),
        (str(second.pk), "22222"),
    ]
    assert all(e["new_row"] == {"postal_code": "33333"} for e in entries)


@commits
def test_the_password_hash_and_the_token_key_never_reach_the_log():
    before = mark()
    user = UserFactory()
    user_pk, first_hash = str(user.pk), user.password
    user.set_password("An0ther-pass-phrase")
    user.save()
    token = Token.objects.create(user=user)
    Token.objects.filter(pk=token.key).delete()
    user.delete()

    text = log_text_since(before)
    for secret in (first_hash, user.password, token.key):
        assert secret not in text
    # The change itself is on record, without the values.
    assert entries_since(before, table_name="accounts_user", action="UPDATE") == [
        {
            "table_name": "accounts_user",
            "row_pk": user_pk,
            "action": "UPDATE",
            "old_row": {"password": "[redacted]"},
            "new_row": {"password": "[redacted]"},
            "db_role": "shop_app",
            "session_role": "shop_app",
            "app_user_id": None,
            "app_customer_id": None,
        }
    ]
    # The token is known by its user: its key is its primary key.
    tokens = entries_since(before, table_name="authtoken_token")
    assert [(e["action"], e["row_pk"]) for e in tokens] == [
        ("INSERT", user_pk),
        ("DELETE", user_pk),
    ]
    assert tokens[0]["new_row"]["key"] == "[redacted]"


@pytest.mark.django_db(databases=["default", "owner"])
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM shop_audit_log",
        "INSERT INTO shop_audit_log (table_name, action) VALUES ('x', 'TRUNCATE')",
        "UPDATE shop_audit_log SET table_name = 'x'",
        "DELETE FROM shop_audit_log",
        "TRUNCATE shop_audit_log",
        "SELECT shop_audit_log_purge(now())",
    ],
)
def test_the_app_can_neither_read_nor_write_the_log(statement):
    assert refused("default", statement) == "42501"  # insufficient_privilege


@pytest.mark.django_db(databases=["default", "owner"])
def test_the_app_cannot_attach_the_audit_function_to_a_table_of_its_own():
    # Otherwise a temporary table named accounts_user would forge entries.
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE accounts_user (id bigint)")

    sqlstate = refused(
        "default",
        "CREATE TRIGGER forge AFTER INSERT ON pg_temp.accounts_user "
        "REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT "
        "EXECUTE FUNCTION public.shop_audit_changes('id')",
    )

    assert sqlstate == "42501"


@pytest.mark.django_db(databases=["owner"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE shop_audit_log SET row_pk = 'forged' WHERE id = %s",
        "DELETE FROM shop_audit_log WHERE id = %s",
        "TRUNCATE shop_audit_log",
    ],
)
def test_even_the_owner_cannot_rewrite_the_log(statement):
    before = mark()
    User.objects.db_manager("owner").create_user("owner-made@example.test", "x")
    (entry_id,) = _ids_since(before)

    params = [entry_id] if "%s" in statement else None
    sqlstate = refused("owner", statement, params, match="append-only")

    assert sqlstate == "42501"
    assert entries_since(before)[0]["db_role"] == "shop_owner"


@pytest.mark.django_db(databases=["owner"])
def test_old_entries_leave_only_through_the_purge_which_logs_itself():
    User.objects.db_manager("owner").create_user("purged@example.test", "x")
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        (cutoff,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM shop_audit_log WHERE occurred_at < %s", [cutoff]
        )
        (older,) = cursor.fetchone()
        before = mark()

        cursor.execute("SELECT shop_audit_log_purge(%s)", [cutoff])
        (purged,) = cursor.fetchone()

        cursor.execute(
            "SELECT count(*) FROM shop_audit_log WHERE occurred_at < %s", [cutoff]
        )
        assert cursor.fetchone() == (0,)
    assert purged == older >= 1
    (record,) = entries_since(before)
    assert (record["table_name"], record["action"]) == ("shop_audit_log", "DELETE")
    assert record["old_row"]["purged_entries"] == purged
    # The cutoff does not outlive the purge: newer entries stay protected.
    refused("owner", "DELETE FROM shop_audit_log", match="append-only")


@pytest.mark.django_db(databases=["owner"])
def test_truncating_an_audited_table_is_logged():
    before = mark()
    with connections["owner"].cursor() as cursor:
        cursor.execute("TRUNCATE authtoken_token")

    assert entries_since(before) == [
        {
            "table_name": "authtoken_token",
            "row_pk": None,
            "action": "TRUNCATE",
            "old_row": None,
            "new_row": None,
            "db_role": "shop_owner",
            "session_role": "shop_owner",
            "app_user_id": None,
            "app_customer_id": None,
        }
    ]


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_the_audit_migration_reverses_and_applies_again():
    # Outside a transaction: reversing shop's log first reverses the apps'
    # migrations that attach the trigger function to their tables (accounts,
    # orders), and one of orders' builds its indexes CONCURRENTLY, which no
    # transaction block may run. The finally puts every migration back.
    try:
        call_command("migrate", "shop", "0001", database="owner", verbosity=0)
        assert _audit_objects() == ([], None)
    finally:
        call_command("migrate", database="owner", verbosity=0)
    triggers, table = _audit_objects()
    assert {name.rsplit("_audit_", 1)[0] for name in triggers} == AUDITED_TABLES
    assert len(triggers) == 4 * len(AUDITED_TABLES)
    assert table == "shop_audit_log"


def _txids_since(last_id):
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT txid::text FROM shop_audit_log WHERE id > %s ORDER BY id", [last_id]
        )
        return [txid for (txid,) in cursor.fetchall()]


def _ids_since(last_id):
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT id FROM shop_audit_log WHERE id > %s", [last_id])
        return [entry_id for (entry_id,) in cursor.fetchall()]


def _audit_objects():
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgfoid = to_regproc('shop_audit_changes') ORDER BY tgname"
        )
        triggers = [name for (name,) in cursor.fetchall()]
        cursor.execute("SELECT to_regclass('shop_audit_log')::text")
        (table,) = cursor.fetchone()
    return triggers, table
