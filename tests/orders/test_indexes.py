"""Every statement of the orders' hot requests can use an index, on small data.

The catalog's checks (tests/catalog/test_indexes.py) name the index each
list query is meant to read. Here the requests are the customer's own: the
order list and its next page, an order, the cart, adding to it, and a whole
checkout. Each statement a request really sent (captured while it ran) is
planned again with `enable_seqscan` off: the planner then takes a
sequential scan only where no index can do the job, so a `Seq Scan` on a
table that grows with the shop means a missing or unusable index. On the
large seed `make plans` (bench/plans.py) checks the same requests with the
planner free to choose.
"""

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.catalog.factories import StockLevelFactory, WarehouseFactory
from tests.dbs import ALL_DATABASES
from tests.orders.conftest import checkout

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

# Tables that grow with customers, orders and the catalog. The warehouses
# (a handful of rows, read whole on purpose) are not among them.
LARGE = (
    "orders_order",
    "orders_order_line",
    "orders_cart",
    "orders_cart_item",
    "orders_payment",
    "orders_idempotency_key",
    "catalog_product",
    "catalog_product_variant",
    "catalog_stock_level",
    "accounts_customer",
    "accounts_user",
    "authtoken_token",
)
EXPLAINABLE = re.compile(r"^\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b", re.I)
SORT_NODE = re.compile(r"(^|->\s+)(Incremental )?Sort\b", re.MULTILINE)


def statements(send):
    """The SQL each statement of `send()` ran, and its response."""
    with CaptureQueriesContext(connection) as queries:
        response = send()
    assert response.status_code < 300, response.content
    sql = [q["sql"] for q in queries.captured_queries]
    return [s for s in sql if EXPLAINABLE.match(_code(s))], response


def _code(sql):
    return "\n".join(ln for ln in sql.splitlines() if not ln.startswith("--"))


def plan_of(sql):
    # SET LOCAL needs a transaction of its own here: the test runs in
    # autocommit, as the real requests do (checkout refuses to run inside
    # one).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row for (row,) in cursor.fetchall())


def assert_no_large_seq_scan(sqls):
    assert sqls
    for sql in sqls:
        plan = plan_of(sql)
        scanned = re.findall(r"Seq Scan on (\w+)", plan)
        assert not [t for t in scanned if t in LARGE], f"{sql}\n\n{plan}"


@pytest.fixture
def ordered(shopper, gateway):
    """A customer with three paid orders and a fourth line in the cart."""
    warehouse = WarehouseFactory()
    skus = [StockLevelFactory(warehouse=warehouse).variant.sku for _ in range(4)]
    for sku in skus[:3]:
        shopper.post("/api/v1/cart/items/", {"sku": sku, "quantity": 1}, format="json")
        assert checkout(shopper).status_code == 201
    return shopper, skus[3]


def test_the_order_list_and_its_next_page_read_the_customers_index_in_order(
    ordered,
):
    shopper, _ = ordered
    first, response = statements(lambda: shopper.get("/api/v1/orders/?page_size=2"))
    assert_no_large_seq_scan(first)
    deep, _ = statements(lambda: shopper.get(response.json()["next"]))
    assert_no_large_seq_scan(deep)
    # The page itself: the customer's orders, newest first, straight from
    # the index on (customer, -created_at, -id), without a sort.
    pages = [s for s in first + deep if re.search(r'FROM "orders_order"\s', s)]
    pages = [s for s in pages if "ORDER BY" in s and "LIMIT" in s]
    assert len(pages) == 2, first + deep
    for sql in pages:
        plan = plan_of(sql)
        assert "orders_order_customer_page_idx" in plan, plan
        assert not SORT_NODE.search(plan), plan


def test_an_order_is_found_by_its_key(ordered):
    shopper, _ = ordered
    order_id = shopper.get("/api/v1/orders/").json()["results"][0]["id"]
    sqls, _ = statements(lambda: shopper.get(f"/api/v1/orders/{order_id}/"))
    assert_no_large_seq_scan(sqls)


def test_the_cart_and_adding_to_it(ordered):
    shopper, sku = ordered
    sqls, _ = statements(
        lambda: shopper.post(
            "/api/v1/cart/items/", {"sku": sku, "quantity": 1}, format="json"
        )
    )
    assert_no_large_seq_scan(sqls)
    sqls, _ = statements(lambda: shopper.get("/api/v1/cart/"))
    assert_no_large_seq_scan(sqls)


def test_every_statement_of_a_checkout_its_locks_and_updates(ordered):
    shopper, sku = ordered
    shopper.post("/api/v1/cart/items/", {"sku": sku, "quantity": 1}, format="json")
    sqls, _ = statements(lambda: checkout(shopper))
    assert any("FOR UPDATE" in s for s in sqls)
    assert any(_code(s).lstrip().upper().startswith(("UPDATE", "WITH")) for s in sqls)
    assert_no_large_seq_scan(sqls)
