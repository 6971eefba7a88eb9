"""Every lab runs against the test database, passes, and leaves nothing behind.

Labs open their own transactions and connections, so these tests are
transactional and list every alias (tests/dbs.py explains why `owner` too).
"""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from shop import lab as labs
from tests.dbs import ALL_DATABASES, as_staff

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

# The chapters' labs; a lab that disappears must fail this list, not pass
# silently because the parametrized test below lost a case.
EXPECTED_LABS = {
    "acid",
    "cache",
    "constraints",
    "update-anomaly",
    "transactional-ddl",
    "sqlmigrate",
    "selector-sql",
    "explain",
    "er-diagram",
    "list-indexes",
    "index-kinds",
    "index-write-cost",
    "search-postings",
    "pool",
    "pgbouncer",
    "orm-vs-sql",
    "zero-downtime",
    "ledger-trigger",
    "savepoint",
    "lost-update",
    "isolation",
    "deadlock",
    "skip-locked",
    "injection",
    "audit",
    "pgbadger",
    "rls",
    "replica",
    "min-price",
    "sqlalchemy",
    "alembic",
    "outbox",
    "joins",
    "windows",
    "partitioning",
    "sharding",
    "redis",
    "nosql-models",
    "wal",
    "pitr",
    "buffers",
}

ROW_COUNTS_SQL = """
SELECT 'accounts_user', count(*) FROM accounts_user
UNION ALL SELECT 'accounts_customer', count(*) FROM accounts_customer
UNION ALL SELECT 'accounts_address', count(*) FROM accounts_address
UNION ALL SELECT 'catalog_category', count(*) FROM catalog_category
UNION ALL SELECT 'catalog_product', count(*) FROM catalog_product
UNION ALL SELECT 'catalog_product_variant', count(*) FROM catalog_product_variant
UNION ALL SELECT 'catalog_warehouse', count(*) FROM catalog_warehouse
UNION ALL SELECT 'catalog_stock_level', count(*) FROM catalog_stock_level
UNION ALL SELECT 'catalog_review', count(*) FROM catalog_review
UNION ALL SELECT 'catalog_search_posting', count(*) FROM catalog_search_posting
UNION ALL SELECT 'orders_cart', count(*) FROM orders_cart
UNION ALL SELECT 'orders_cart_item', count(*) FROM orders_cart_item
UNION ALL SELECT 'orders_coupon', count(*) FROM orders_coupon
UNION ALL SELECT 'orders_coupon_redemption', count(*) FROM orders_coupon_redemption
UNION ALL SELECT 'orders_order', count(*) FROM orders_order
UNION ALL SELECT 'orders_order_line', count(*) FROM orders_order_line
UNION ALL SELECT 'orders_payment', count(*) FROM orders_payment
UNION ALL SELECT 'orders_idempotency_key', count(*) FROM orders_idempotency_key
UNION ALL SELECT 'orders_stock_movement', count(*) FROM orders_stock_movement
"""


def _database_state():
    """Row counts of the tables labs write to, and any lab_* table left over.

    Counted as staff, whom the policies show every customer's rows, so a
    row a lab left behind in any customer's name shows. Not as shop_loader:
    it bypasses the policies but may read only the seeded tables.
    """
    with as_staff(), connections["default"].cursor() as cursor:
        cursor.execute(ROW_COUNTS_SQL)
        counts = dict(cursor.fetchall())
        cursor.execute(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename LIKE %s",
            ["lab\\_%"],
        )
        leftovers = [name for (name,) in cursor.fetchall()]
    return counts, leftovers


def test_lab_list_shows_every_chapters_lab():
    out = io.StringIO()
    call_command("lab", "--list", stdout=out)
    listed = {line.split()[1] for line in out.getvalue().splitlines() if line.strip()}
    assert EXPECTED_LABS - listed == set()


@pytest.mark.parametrize("name", list(labs.discover()))
def test_lab_passes_and_leaves_no_trace(name):
    counts_before, _ = _database_state()
    out = io.StringIO()

    call_command("lab", name, stdout=out)

    assert f"\nlab {name}: " in out.getvalue()
    assert "check(s) passed" in out.getvalue()
    counts_after, leftovers = _database_state()
    assert counts_after == counts_before
    assert all(count == 0 for count in counts_after.values())
    assert leftovers == []


@pytest.fixture
def throwaway_lab():
    """Register labs for one test only; unregister them afterwards."""
    names = []

    def register(name, func):
        labs.lab(name, chapter="00", summary="a test's throw-away lab")(func)
        names.append(name)

    yield register
    for name in names:
        labs.REGISTRY.pop(name, None)


def test_a_lab_whose_claim_is_false_exits_with_command_error(throwaway_lab):
    throwaway_lab("test-false-claim", lambda n: n.expect(1 + 1 == 3, "1 + 1 == 3"))

    with pytest.raises(
        CommandError, match="lab test-false-claim failed: 1 \\+ 1 == 3"
    ) as error:
        call_command("lab", "test-false-claim", stdout=io.StringIO())

    assert error.value.returncode == 1


def test_a_statement_expected_to_fail_that_succeeds_fails_the_lab_and_is_undone(
    throwaway_lab,
):
    def lab_expecting_an_error(n):
        n.expect_sql_error(
            "INSERT INTO catalog_category (name, slug) VALUES (%s, %s)",
            ["Fine", "lab-test-fine"],
            sqlstate="23514",
            claim="a perfectly good category is refused",
        )

    throwaway_lab("test-no-error", lab_expecting_an_error)

    with pytest.raises(CommandError, match="but no error was raised"):
        call_command("lab", "test-no-error", stdout=io.StringIO())

    counts, _ = _database_state()
    assert counts["catalog_category"] == 0


def test_an_unknown_lab_is_a_command_error():
    with pytest.raises(CommandError, match="unknown lab\\(s\\): no-such-lab"):
        call_command("lab", "no-such-lab", stdout=io.StringIO())
