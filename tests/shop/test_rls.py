"""Row-level security, as shop_app really meets it (chapter 22).

Two customers, A and B, each own one row in every customer-owned table.
Raw SQL on fresh shop_app connections, under each context (A, B, staff, a
background job, none), must see exactly the rows the policies promise; a
pooled connection must carry nothing from one transaction to the next; and
writes for another customer must be refused by WITH CHECK, or find nothing.
"""

from dataclasses import dataclass

import psycopg
import pytest
from django.db import connection, connections
from psycopg_pool import ConnectionPool

from catalog.models import Review
from orders.models import CouponRedemption, IdempotencyKey, Payment
from shop.db_context import customer_transaction, job_transaction, staff_transaction
from tests.accounts.factories import AddressFactory, CustomerFactory, UserFactory
from tests.catalog.factories import ProductFactory, StockLevelFactory
from tests.dbs import ALL_DATABASES, as_staff, wait_for_replica
from tests.orders.conftest import client_for
from tests.orders.factories import (
    CartItemFactory,
    CouponFactory,
    OrderFactory,
    OrderLineFactory,
)

pytestmark = pytest.mark.django_db(
    transaction=True, databases=[*ALL_DATABASES, "readonly"]
)

RLS_VIOLATION = "42501"  # "new row violates row-level security policy"

# Every customer-owned table, and what a background job may see of it.
GUARDED = {
    "accounts_address": False,
    "orders_cart": True,
    "orders_cart_item": True,
    "orders_order": True,
    "orders_order_line": True,
    "orders_payment": True,
    "orders_idempotency_key": True,
    "orders_coupon_redemption": True,
    "catalog_review": None,  # public to read, whoever asks
}
# Tables that reference a customer (directly or through a parent) but are
# deliberately not guarded, with the reason; a new one must be added here or
# given policies, or test_every_customer_owned_table_is_guarded fails.
NOT_GUARDED = {
    # The identity table itself: read while authenticating a request, before
    # any context can exist. Its one sensitive column is encrypted (chapter 23).
    "accounts_customer",
    # The warehouse's stock ledger; order_id only labels why stock moved.
    "orders_stock_movement",
}
# The owner of each table's rows: SQL giving the customer_id of a row.
OWNER_SQL = {
    "accounts_address": "SELECT customer_id FROM accounts_address",
    "orders_cart": "SELECT customer_id FROM orders_cart",
    "orders_cart_item": "SELECT c.customer_id FROM orders_cart_item AS i "
    "JOIN orders_cart AS c ON c.id = i.cart_id",
    "orders_order": "SELECT customer_id FROM orders_order",
    "orders_order_line": "SELECT o.customer_id FROM orders_order_line AS l "
    "JOIN orders_order AS o ON o.id = l.order_id",
    "orders_payment": "SELECT o.customer_id FROM orders_payment AS p "
    "JOIN orders_order AS o ON o.id = p.order_id",
    "orders_idempotency_key": "SELECT customer_id FROM orders_idempotency_key",
    "orders_coupon_redemption": "SELECT customer_id FROM orders_coupon_redemption",
    "catalog_review": "SELECT customer_id FROM catalog_review",
}
CONTEXT_SQL = (
    "SELECT set_config('app.customer_id', %s, true), "
    "set_config('app.is_staff', %s, true), set_config('app.job', %s, true)"
)


@dataclass(frozen=True)
class Owned:
    customer_id: int
    user_id: int
    address_id: int
    address_line1: str
    cart_id: int
    cart_item_id: int
    order_id: int
    review_id: int


def owned_rows(coupon) -> Owned:
    """One row in every guarded table for a new customer, created as staff."""
    customer = CustomerFactory()
    address = AddressFactory(customer=customer)
    level = StockLevelFactory()
    item = CartItemFactory(cart__customer=customer, variant=level.variant)
    order = OrderFactory(customer=customer)
    OrderLineFactory(order=order, stock=level)
    with as_staff():
        Payment.objects.create(order=order, amount=order.total, status="captured")
        IdempotencyKey.objects.create(
            customer=customer, key="k", request_fingerprint="f"
        )
        CouponRedemption.objects.create(coupon=coupon, order=order, customer=customer)
        review = Review.objects.create(
            product=ProductFactory(), customer=customer, rating=5
        )
    return Owned(
        customer_id=customer.pk,
        user_id=customer.user_id,
        address_id=address.pk,
        address_line1=address.line1,
        cart_id=item.cart_id,
        cart_item_id=item.pk,
        order_id=order.pk,
        review_id=review.pk,
    )


@pytest.fixture
def two_customers():
    coupon = CouponFactory()
    return owned_rows(coupon), owned_rows(coupon)


def app_connection(alias="default", **kwargs):
    """A fresh psycopg connection as the alias's role (shop_app by default)."""
    return psycopg.connect(**connections[alias].get_connection_params(), **kwargs)


def owners_seen(conn, context: tuple[str, str, str]) -> dict[str, list[int]]:
    """In one transaction under `context`, the owners of every row each table shows."""
    seen = {}
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(CONTEXT_SQL, context)
        for table, sql in OWNER_SQL.items():
            cursor.execute(sql + " ORDER BY 1")  # statements from the table above
            seen[table] = [row[0] for row in cursor.fetchall()]
    return seen


def as_customer(owned: Owned):
    return (str(owned.customer_id), "off", "")


STAFF, JOB, NOBODY = ("", "on", ""), ("", "off", "checkout_recover"), ("", "", "")


def test_every_customer_owned_table_is_guarded_enabled_and_forced():
    """From the catalog: tables that point at a customer, directly or via a parent."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE owned (rel) AS (
                SELECT 'accounts_customer'::regclass
                UNION
                SELECT con.conrelid FROM pg_constraint AS con
                JOIN owned ON con.confrelid = owned.rel
                WHERE con.contype = 'f'
            )
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
            FROM owned JOIN pg_class AS c ON c.oid = owned.rel
            -- A partition carries its parent's foreign keys, and is reached
            -- only through the parent, whose grants and policies apply (the
            -- stock ledger's months: orders/partitions.py).
            WHERE NOT c.relispartition
            ORDER BY c.relname
            """
        )
        found = {name: (enabled, forced) for name, enabled, forced in cursor}
    guarded = {name for name in found if name not in NOT_GUARDED}
    assert guarded == set(GUARDED), "a new customer-owned table needs policies"
    assert all(found[name] == (True, True) for name in guarded)


def test_each_context_sees_exactly_its_rows(two_customers):
    a, b = two_customers
    everyone = sorted([a.customer_id, b.customer_id])
    with app_connection() as conn:
        by_a = owners_seen(conn, as_customer(a))
        by_b = owners_seen(conn, as_customer(b))
        by_staff = owners_seen(conn, STAFF)
        by_job = owners_seen(conn, JOB)
        by_nobody = owners_seen(conn, NOBODY)

    for table, job_may in GUARDED.items():
        if job_may is None:  # reviews: public reads
            assert by_a[table] == by_b[table] == by_nobody[table] == everyone
            continue
        assert by_a[table] == [a.customer_id], table
        assert by_b[table] == [b.customer_id], table
        assert by_staff[table] == everyone, table
        assert by_job[table] == (everyone if job_may else []), table
        assert by_nobody[table] == [], table


def test_a_context_ends_with_its_transaction_on_a_reused_pooled_connection(
    two_customers,
):
    a, b = two_customers
    params = connections["default"].get_connection_params()
    with ConnectionPool(kwargs=params, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn:
            first_pid = conn.info.backend_pid
            assert owners_seen(conn, as_customer(a))["orders_order"] == [a.customer_id]
        with pool.connection() as conn:
            assert conn.info.backend_pid == first_pid  # the same server session
            # What A's transaction set is gone: this one says nothing.
            with conn.cursor() as cursor:
                cursor.execute("SELECT customer_id FROM orders_order")
                assert cursor.fetchall() == []
                cursor.execute("SELECT current_setting('app.customer_id', true)")
                assert cursor.fetchone() == ("",)
        with pool.connection() as conn:
            assert conn.info.backend_pid == first_pid
            assert owners_seen(conn, as_customer(b))["orders_order"] == [b.customer_id]


def test_a_session_level_context_would_leak_which_is_why_the_app_never_sets_one(
    two_customers,
):
    """The control experiment: the test above can fail, and this is how."""
    a, _ = two_customers
    params = connections["default"].get_connection_params()
    with ConnectionPool(kwargs=params, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn:
            conn.execute(
                "SELECT set_config('app.customer_id', %s, false)",  # session-wide
                [str(a.customer_id)],
            )
        with pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT customer_id FROM orders_order")
            assert cursor.fetchall() == [(a.customer_id,)]  # the next user sees A's


def test_django_connection_reused_across_requests_keeps_no_context(two_customers):
    a, b = two_customers
    for owned in (a, b):
        client = client_for(_customer(owned.customer_id))
        response = client.get("/api/v1/orders/")
        assert [o["id"] for o in response.json()["results"]] == [owned.order_id]
    # The same Django connection served both requests; outside them, nobody.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orders_order")
        assert cursor.fetchone() == (0,)


def _customer(customer_id):
    from shop.accounts.models import Customer

    return Customer.objects.select_related("user").get(pk=customer_id)


def test_the_api_shows_a_customer_only_their_own_rows(two_customers):
    a, b = two_customers
    client = client_for(_customer(a.customer_id))

    assert [o["id"] for o in client.get("/api/v1/orders/").json()["results"]] == [
        a.order_id
    ]
    assert client.get(f"/api/v1/orders/{b.order_id}/").status_code == 404
    assert [i["id"] for i in client.get("/api/v1/cart/").json()["items"]] == [
        a.cart_item_id
    ]
    url = f"/api/v1/cart/items/{b.cart_item_id}/"
    assert client.patch(url, {"quantity": 1}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.post(f"/api/v1/orders/{b.order_id}/cancel/").status_code == 404


def test_a_query_that_forgets_its_where_clause_still_sees_one_customer(
    two_customers,
):
    """Defence in depth: the bug RLS exists for."""
    from orders.models import Order

    a, _ = two_customers
    with customer_transaction(a.customer_id):
        assert list(Order.objects.values_list("customer_id", flat=True)) == [
            a.customer_id
        ]


def refused(conn, context, sql, params):
    """Run `sql` under `context`: the SQLSTATE it failed with, or its rowcount."""
    try:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.execute(CONTEXT_SQL, context)
            cursor.execute(sql, params)
            return cursor.rowcount
    except psycopg.Error as exc:
        return exc.sqlstate


ADDRESS_INSERT = (
    "INSERT INTO accounts_address (customer_id, line1, line2, city, postal_code, "
    "country, is_default) VALUES (%s, '1 Other St', '', 'Town', '1', 'US', false)"
)
ORDER_INSERT = (
    "INSERT INTO orders_order (customer_id, status, subtotal, discount, total, "
    "ship_line1, ship_line2, ship_city, ship_postal_code, ship_country, created_at, "
    "updated_at) VALUES (%s, 'pending', 1, 0, 1, 'x', '', 'x', '1', 'US', now(), now())"
)
LINE_INSERT = (
    "INSERT INTO orders_order_line (order_id, variant_id, warehouse_id, sku, "
    "product_name, unit_price, quantity) SELECT %s, variant_id, warehouse_id, "
    "'S', 'x', 1, 1 FROM catalog_stock_level LIMIT 1"
)
REVIEW_INSERT = (
    "INSERT INTO catalog_review (product_id, customer_id, rating, title, body, "
    "created_at) SELECT id, %s, 3, '', '', now() FROM catalog_product "
    "ORDER BY id DESC LIMIT 1"
)


def test_writes_for_another_customer_are_refused_or_find_nothing(two_customers):
    a, b = two_customers
    as_a = as_customer(a)
    with app_connection() as conn:
        # New rows in B's name fail WITH CHECK, for direct and child tables.
        assert refused(conn, as_a, ADDRESS_INSERT, [b.customer_id]) == RLS_VIOLATION
        assert refused(conn, as_a, ORDER_INSERT, [b.customer_id]) == RLS_VIOLATION
        assert refused(conn, as_a, LINE_INSERT, [b.order_id]) == RLS_VIOLATION
        assert refused(conn, as_a, REVIEW_INSERT, [b.customer_id]) == RLS_VIOLATION
        # Moving one's own row to B fails WITH CHECK as well.
        move = "UPDATE orders_order SET customer_id = %s WHERE id = %s"
        assert refused(conn, as_a, move, [b.customer_id, a.order_id]) == RLS_VIOLATION
        # B's rows are invisible to A's UPDATE and DELETE: nothing matches.
        assert (
            refused(
                conn,
                as_a,
                "UPDATE accounts_address SET city = 'X' WHERE id = %s",
                [b.address_id],
            )
            == 0
        )
        assert (
            refused(
                conn,
                as_a,
                "DELETE FROM orders_cart_item WHERE id = %s",
                [b.cart_item_id],
            )
            == 0
        )
        # Reviews: readable by all, but only the author changes one.
        assert (
            refused(
                conn,
                as_a,
                "UPDATE catalog_review SET rating = 1 WHERE id = %s",
                [b.review_id],
            )
            == 0
        )
        # A foreign key check ignores the policies: the policy itself must
        # refuse a row of A's that points at B's order.
        link = "UPDATE orders_idempotency_key SET order_id = %s WHERE customer_id = %s"
        assert refused(conn, as_a, link, [b.order_id, a.customer_id]) == RLS_VIOLATION
        redeem = (
            "INSERT INTO orders_coupon_redemption (coupon_id, order_id, customer_id, "
            "created_at) SELECT id, %s, %s, now() FROM orders_coupon LIMIT 1"
        )
        assert refused(conn, as_a, redeem, [b.order_id, a.customer_id]) == RLS_VIOLATION
        # Acting for nobody writes nothing; a job writes no address.
        assert refused(conn, NOBODY, ORDER_INSERT, [a.customer_id]) == RLS_VIOLATION
        assert refused(conn, JOB, ADDRESS_INSERT, [a.customer_id]) == RLS_VIOLATION
        # The own rows, for contrast, are writable.
        assert refused(conn, as_a, ADDRESS_INSERT, [a.customer_id]) == 1
        assert refused(conn, STAFF, ADDRESS_INSERT, [b.customer_id]) == 1


def test_the_owner_is_held_to_the_policies_too(two_customers):
    """FORCE ROW LEVEL SECURITY: shop_owner, who owns the tables, sees nothing."""
    a, _ = two_customers
    with app_connection("owner") as conn:
        assert owners_seen(conn, NOBODY)["orders_order"] == []
        assert owners_seen(conn, as_customer(a))["orders_order"] == [a.customer_id]


def test_analytics_on_the_replica_sees_rows_only_as_staff(two_customers):
    a, b = two_customers
    wait_for_replica()
    with app_connection("readonly") as conn:
        assert owners_seen(conn, NOBODY)["orders_order"] == []
        assert owners_seen(conn, STAFF)["orders_order"] == sorted(
            [a.customer_id, b.customer_id]
        )


def test_only_the_loader_bypasses_the_policies(two_customers):
    with app_connection("loader") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolbypassrls, rolsuper FROM pg_roles "
            "WHERE rolname = current_user"
        )
        assert cursor.fetchone() == ("shop_loader", True, False)
        cursor.execute("SELECT count(*) FROM orders_order")
        assert cursor.fetchone() == (2,)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname FROM pg_roles WHERE rolbypassrls AND NOT rolsuper "
            "AND rolname LIKE 'shop%' ORDER BY 1"
        )
        assert cursor.fetchall() == [("shop_loader",)]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE orders_order SET status = status",
        "DELETE FROM orders_order",
        "SELECT count(*) FROM shop_audit_log",
        "INSERT INTO shop_audit_log (table_name, row_pk, action, db_role) "
        "VALUES ('x', '1', 'INSERT', 'x')",
        "TRUNCATE orders_order CASCADE",
    ],
    ids=lambda sql: " ".join(sql.split()[:3]).lower(),
)
def test_the_loader_only_reads_and_appends(sql):
    with (
        app_connection("loader", autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        # What no seed phase fills: keys and carts are customers' live
        # requests, the ledger is the gateway's, tokens are logins.
        "SELECT count(*) FROM orders_idempotency_key",
        "INSERT INTO orders_idempotency_key DEFAULT VALUES",
        "SELECT count(*) FROM orders_fake_gateway_ledger",
        "INSERT INTO orders_fake_gateway_ledger DEFAULT VALUES",
        "SELECT count(*) FROM orders_cart_item",
        "INSERT INTO orders_cart DEFAULT VALUES",
        "SELECT count(*) FROM authtoken_token",
        "SELECT count(*) FROM django_session",
        # The stock ledger's trigger appends as the loader; it reads nothing.
        "SELECT count(*) FROM orders_stock_movement",
    ],
    ids=lambda sql: " ".join(sql.split()[:4]).lower(),
)
def test_the_loader_reaches_no_table_the_seed_does_not_fill(sql):
    with (
        app_connection("loader", autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(sql)


def test_a_nested_context_gives_the_outer_one_back(two_customers):
    from orders.models import Order

    a, b = two_customers
    with staff_transaction():
        with customer_transaction(a.customer_id):
            assert Order.objects.count() == 1
        assert Order.objects.count() == 2  # staff again
        with job_transaction("test"):
            assert Order.objects.count() == 2
            with customer_transaction(b.customer_id):
                assert list(Order.objects.values_list("pk", flat=True)) == [b.order_id]
            assert Order.objects.count() == 2  # the job again


def test_a_job_context_needs_a_name():
    with pytest.raises(ValueError), job_transaction(""):
        pass


def test_staff_in_the_admin_see_every_customers_addresses(two_customers):
    from django.test import Client

    a, b = two_customers
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)

    page = client.get(f"/admin/accounts/customer/{b.customer_id}/change/")

    assert page.status_code == 200
    assert b.address_line1.encode() in page.content  # the address inline
    reviews = client.get("/admin/catalog/review/")
    assert reviews.status_code == 200
    assert b"2 reviews" in reviews.content
