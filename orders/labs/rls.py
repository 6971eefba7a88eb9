"""Lab `rls` (22): the same query, two customers, two answers; no context, no
rows; WITH CHECK refuses a row in someone else's name; a transaction-local
context ends at COMMIT, a session-level one would outlive it.
"""

from __future__ import annotations

import re

from orders.labs._common import _committed_rows, _customers, _orders
from shop.lab import Narrator, connect, lab

# The same statement every time; only the context around it changes. The
# WHERE keeps to the lab's rows, not to one customer: choosing the customer
# is what the policies do.
QUERY = (
    "SELECT id, customer_id FROM orders_order WHERE ship_city = 'Labville' ORDER BY id"
)
SET_CUSTOMER = "SELECT set_config('app.customer_id', %s, true)"
INSERT_FOR = """
INSERT INTO orders_order
    (customer_id, status, subtotal, discount, total, ship_line1, ship_line2,
     ship_city, ship_postal_code, ship_country, created_at, updated_at)
VALUES (%s, 'pending', 1, 0, 1, '1 Lab Street', '', 'Labville', '1000', 'US',
        now(), now())
"""
GUARDED_TABLES = [
    "accounts_address",
    "catalog_review",
    "orders_cart",
    "orders_cart_item",
    "orders_coupon_redemption",
    "orders_idempotency_key",
    "orders_order",
    "orders_order_line",
    "orders_payment",
]


@lab(
    "rls",
    chapter="22",
    summary="The same query, two customers, two answers; no context, no rows",
)
def rls(n: Narrator) -> None:
    n.step("Which tables are guarded, and how (the catalog)")
    rows = n.sql(
        "SELECT relname, relrowsecurity AS enabled, relforcerowsecurity AS forced "
        "FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
        [GUARDED_TABLES],
    )
    n.expect(
        len(rows) == len(GUARDED_TABLES) and all(r[1] and r[2] for r in rows),
        "row-level security is enabled and forced on every customer-owned table",
    )
    rows = n.sql(
        "SELECT policyname, cmd, qual FROM pg_policies "
        "WHERE tablename = 'orders_order' ORDER BY policyname"
    )
    n.expect(
        [r[0] for r in rows]
        == ["orders_order_customer", "orders_order_job", "orders_order_staff"],
        "orders_order has one permissive policy per kind of actor",
    )

    with _committed_rows(n, "22") as setup:
        a, b = _customers(n, "22", 2, cursor=setup, label="setup, committed, as staff")
        (order_a,) = _orders(n, a, 1, cursor=setup, label="an order of customer A")
        (order_b,) = _orders(n, b, 1, cursor=setup, label="an order of customer B")
        with connect("default", autocommit=True) as conn, conn.cursor() as app:
            _two_answers(n, app, (a, order_a), (b, order_b))
            _plan(n, app, a)
            _with_check(n, app, a, b)
            _transaction_local(n, app, a, order_a)

    n.step("FORCE: the tables' owner is held to the policies too")
    rows = n.sql(
        "SELECT current_user, count(*) FROM orders_order",
        using="owner",
        label="shop_owner, no context",
    )
    n.expect(rows[0][1] == 0, "shop_owner, acting for nobody, sees no order")
    rows = n.sql(
        "SELECT rolname FROM pg_roles "
        "WHERE rolbypassrls AND NOT rolsuper AND rolname LIKE 'shop%'"
    )
    n.expect(
        rows == [("shop_loader",)],
        "only shop_loader (the seed's COPY) bypasses them; never the app",
    )


def _two_answers(n: Narrator, app, first, second) -> None:
    n.step("One query, two customers, two answers (shop_app, a transaction each)")
    for label, (customer, order) in (("customer A", first), ("customer B", second)):
        n.sql("BEGIN", cursor=app, label=label)
        n.sql(SET_CUSTOMER, [str(customer)], cursor=app)
        rows = n.sql(QUERY, cursor=app)
        n.sql("COMMIT", cursor=app)
        n.expect(rows == [(order, customer)], f"{label} sees their own order only")

    n.step("No context, no rows")
    rows = n.sql(QUERY, cursor=app, label="autocommit: a transaction that set nothing")
    n.expect(rows == [], "a transaction acting for nobody sees no order at all")


def _plan(n: Narrator, app, customer: int) -> None:
    n.step("What runs: the planner adds the policies to the query")
    n.sql("BEGIN", cursor=app)
    n.sql(SET_CUSTOMER, [str(customer)], cursor=app)
    rows = n.sql("EXPLAIN (VERBOSE, COSTS OFF) " + QUERY, cursor=app, limit=20)
    n.sql("COMMIT", cursor=app)
    plan = "\n".join(row[0] for row in rows)
    n.expect(
        plan.count("InitPlan") == 3 and "current_setting('app.customer_id'" in plan,
        "each setting is read once, by an InitPlan, not once per row",
    )
    n.expect(
        re.search(r"\(\$\d OR \$\d OR \(orders_order\.customer_id = \$\d\)\)", plan)
        is not None,
        "the scan filters on the three policies, ORed, next to the query's WHERE",
    )


def _with_check(n: Narrator, app, customer: int, other: int) -> None:
    n.step("WITH CHECK: no new row in another customer's name")
    n.sql("BEGIN", cursor=app, label="customer A")
    n.sql(SET_CUSTOMER, [str(customer)], cursor=app)
    n.expect_sql_error(
        INSERT_FOR,
        [other],
        cursor=app,
        label="an order for customer B",
        sqlstate="42501",
        contains="row-level security",
        claim="A cannot insert an order for B (42501, the policy's check)",
    )
    rows = n.sql(
        "UPDATE orders_order SET status = 'failed' WHERE customer_id = %s",
        [other],
        cursor=app,
        label="B's orders, as A",
    )
    n.expect(rows is None and app.rowcount == 0, "A's UPDATE finds none of B's rows")
    n.sql("ROLLBACK", cursor=app)


def _transaction_local(n: Narrator, app, customer: int, order: int) -> None:
    n.step("Transaction-local: the context ends with its transaction")
    n.sql("BEGIN", cursor=app)
    n.sql(SET_CUSTOMER, [str(customer)], cursor=app, label="is_local = true")
    n.sql("COMMIT", cursor=app)
    rows = n.sql(
        "SELECT current_setting('app.customer_id', true) AS customer_id", cursor=app
    )
    n.expect(rows == [("",)], "after COMMIT the setting is empty again")
    n.expect(n.sql(QUERY, cursor=app) == [], "and the next transaction sees nothing")

    n.step("The mistake: a session-level setting outlives its transaction")
    n.sql(
        "SELECT set_config('app.customer_id', %s, false)",
        [str(customer)],
        cursor=app,
        label="is_local = false",
    )
    rows = n.sql(QUERY, cursor=app, label="a later transaction on this connection")
    n.sql("SELECT set_config('app.customer_id', '', false)", cursor=app)
    n.expect(
        rows == [(order, customer)],
        "it still acts for A: handed to the next request by a pool, it would "
        "show A's orders to whoever comes next",
    )
