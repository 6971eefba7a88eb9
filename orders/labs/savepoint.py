"""Lab `savepoint` (10): one failed statement aborts the whole transaction; a
savepoint undoes only the coupon step, as checkout's phase 1 does.
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
from django.db import connections
from django.test.utils import CaptureQueriesContext

from catalog.labs.rows import CATALOG_ROWS_SQL_FILE, catalog_rows_params
from orders.labs._common import (
    COUPON_SQL,
    _committed_rows,
    _customers,
    _error_line,
    _names,
    _orders,
    _sessions,
    _show_captured,
    _stock_rows,
)
from orders.services.checkout import ShippingAddress, _reserve
from shop.accounts.labs import CUSTOMERS_SQL_FILE, lab_customers_params
from shop.lab import LabFailed, Narrator, lab, rolled_back
from shop.sql_files import read_sql

ADDRESS = ShippingAddress(
    line1="1 Lab Street", city="Labville", postal_code="1000", country="US"
)


COUPON_STEP = "UPDATE orders_coupon SET times_used = times_used + 1 WHERE id = %s"


def _checkout_rows(n, cursor, *, quiet=False):
    """Stock, a customer and a used-up coupon, in the session's transaction."""
    params = _names("10")
    if quiet:
        cursor.execute(
            read_sql(CATALOG_ROWS_SQL_FILE), catalog_rows_params("10", on_hand=5)
        )
        stock = cursor.fetchall()
        cursor.execute(read_sql(CUSTOMERS_SQL_FILE), lab_customers_params("10", 1))
        (customer,) = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            COUPON_SQL, {"code": params["code"], "usage_limit": 1, "times_used": 1}
        )
        coupon = cursor.fetchone()[0]
        return stock[0][0], customer, coupon
    stock = _stock_rows(n, "10", on_hand=5, cursor=cursor, label="setup")
    (customer,) = _customers(n, "10", 1, cursor=cursor, label="setup")
    coupon = n.sql(
        COUPON_SQL,
        {"code": params["code"], "usage_limit": 1, "times_used": 1},
        cursor=cursor,
        label="setup: a coupon whose only use is spent",
    )[0][0]
    return stock[0][0], customer, coupon


def _place_order(n, cursor, customer, stock_id) -> int:
    (order,) = _orders(n, customer, 1, cursor=cursor, label="the order")
    n.sql(
        "UPDATE catalog_stock_level SET reserved = reserved + 1 WHERE id = %s",
        [stock_id],
        cursor=cursor,
        label="its stock reservation",
    )
    return order


@lab(
    "savepoint",
    chapter="10",
    summary="A failed coupon step rolls back to its savepoint; the order commits",
)
def savepoint(n: Narrator) -> None:
    with _committed_rows(n, "10") as observer, _sessions(1) as (a,):
        n.step("Without a savepoint, one failed statement ruins the transaction")
        n.sql("BEGIN", cursor=a)
        stock_id, customer, coupon = _checkout_rows(n, a)
        order = _place_order(n, a, customer, stock_id)
        n.show_sql(COUPON_STEP, [coupon], label="redeem the coupon")
        try:
            a.execute(COUPON_STEP, [coupon])
        except psycopg.errors.CheckViolation as exc:
            n.say(_error_line(exc))
            n.expect(
                exc.diag.constraint_name == "orders_coupon_times_used_within_limit",
                "the coupon's CHECK refuses a second use",
            )
        else:
            raise LabFailed("the coupon's second use was accepted")
        n.expect_error(
            lambda: n.sql(
                "SELECT status FROM orders_order WHERE id = %s", [order], cursor=a
            ),
            sqlstate="25P02",
            claim="after the error every statement is refused (25P02 "
            "in_failed_sql_transaction) until the transaction ends",
        )
        n.sql("ROLLBACK", cursor=a, label="the only way out")
        rows = n.sql(
            "SELECT count(*) AS orders FROM orders_order WHERE id = %s",
            [order],
            cursor=observer,
            label="another session",
        )
        n.expect(rows == [(0,)], "the order went down with the coupon")

        n.step("With a savepoint, only the coupon step is undone and the order commits")
        n.sql("BEGIN", cursor=a)
        n.say("    -- the same setup as above, in this transaction")
        stock_id, customer, coupon = _checkout_rows(n, a, quiet=True)
        order = _place_order(n, a, customer, stock_id)
        n.sql("SAVEPOINT redeem_coupon", cursor=a)
        n.show_sql(COUPON_STEP, [coupon])
        try:
            a.execute(COUPON_STEP, [coupon])
        except psycopg.errors.CheckViolation as exc:
            n.say(_error_line(exc))
        else:
            raise LabFailed("the coupon's second use was accepted")
        n.sql("ROLLBACK TO SAVEPOINT redeem_coupon", cursor=a)
        n.sql(
            "SELECT status, total FROM orders_order WHERE id = %s",
            [order],
            cursor=a,
            label="the transaction goes on",
        )
        n.sql("COMMIT", cursor=a)
        rows = n.sql(
            """
            SELECT o.status, o.discount, s.reserved, c.times_used
            FROM orders_order AS o, catalog_stock_level AS s, orders_coupon AS c
            WHERE o.id = %s AND s.id = %s AND c.id = %s
            """,
            [order, stock_id, coupon],
            cursor=observer,
            label="another session, after COMMIT",
        )
        n.expect(
            rows == [("pending", Decimal("0.00"), 1, 1)],
            "the order and its reservation committed; the coupon is untouched",
        )

        _shop_phase_one(n, customer, stock_id)


def _shop_phase_one(n: Narrator, customer: int, stock_id: int) -> None:
    n.step("The shop's phase 1: transaction.atomic() inside transaction.atomic()")
    n.say(
        "    The coupon gets 5 uses, but this customer redeemed it before; the\n"
        "    redemption's UNIQUE (coupon, customer) will refuse a second one."
    )
    code = _names("10")["code"]
    with rolled_back("default"):
        n.say("    BEGIN  -- the lab's own transaction, rolled back at the end")
        n.act_as_customer(customer)
        n.sql(
            "UPDATE orders_coupon SET usage_limit = 5 WHERE code = %s RETURNING id",
            [code],
        )
        n.sql(
            "UPDATE orders_order SET status = 'failed' "
            "WHERE customer_id = %s AND status = 'pending'",
            [customer],
            label="settle the step above's order first: phase 1 refuses a "
            "customer whose checkout is still pending",
        )
        # Two statements, not one with a writable CTE: the redemption's policy
        # looks its order up, and a statement cannot see the rows its own CTE
        # inserts, so the redemption would fail the policy's check (chapter 22).
        (earlier,) = n.sql(
            """
            INSERT INTO orders_order
                (customer_id, status, subtotal, discount, total, ship_line1,
                 ship_line2, ship_city, ship_postal_code, ship_country,
                 created_at, updated_at, paid_at)
            VALUES (%s, 'paid', 10, 1, 9, '1 Lab Street', '', 'Labville', '1000',
                    'US', now(), now(), now())
            RETURNING id
            """,
            [customer],
            label="an earlier order",
        )[0]
        n.sql(
            """
            INSERT INTO orders_coupon_redemption
                (coupon_id, order_id, customer_id, created_at)
            SELECT id, %(order)s, %(customer)s, now()
            FROM orders_coupon WHERE code = %(code)s
            """,
            {"order": earlier, "customer": customer, "code": code},
            label="that used the coupon",
        )
        # Two statements again, for the same reason: the cart item's policy
        # looks its cart up.
        n.sql(
            "INSERT INTO orders_cart (customer_id, created_at, updated_at) "
            "VALUES (%s, now(), now())",
            [customer],
            label="a cart",
        )
        n.sql(
            """
            INSERT INTO orders_cart_item (cart_id, variant_id, quantity, added_at)
            SELECT c.id, s.variant_id, 1, now()
            FROM orders_cart AS c, catalog_stock_level AS s
            WHERE c.customer_id = %(customer)s AND s.id = %(stock)s
            """,
            {"customer": customer, "stock": stock_id},
            label="with one unit",
        )
        key = n.sql(
            "INSERT INTO orders_idempotency_key (customer_id, key, "
            "request_fingerprint, status, created_at, updated_at) "
            "VALUES (%s, 'lab-10', 'lab', 'in_progress', now(), now()) RETURNING id",
            [customer],
        )[0][0]
        before = _coupon_and_stock(n, code, stock_id)

        n.say(
            f"\n    _reserve(customer_id={customer}, key_id={key}, address, "
            f"coupon_code={code!r})"
        )
        n.say(
            "    -- the SQL it sent; its outer atomic() is a savepoint here because\n"
            "    -- the lab's transaction is already open (in the shop it is BEGIN):"
        )
        with CaptureQueriesContext(connections["default"]) as captured:
            placed = _reserve(customer, key, ADDRESS, code)
        statements = _show_captured(n, captured)
        n.say(
            "    -- the redemption INSERT failed (23505, UNIQUE (coupon, customer));\n"
            "    -- _redeem_coupon catches the IntegrityError outside its savepoint"
        )
        n.say(f"    -> coupon_note: {placed.coupon_note!r}")

        marks = [kind for kind in map(_kind, statements) if kind != "other"]
        inner = len(marks) - 1 - marks[::-1].index("savepoint")
        n.expect(
            marks[inner : inner + 4]
            == ["savepoint", "coupon update", "redemption insert", "rollback to"],
            "the coupon step ran between SAVEPOINT and ROLLBACK TO SAVEPOINT: "
            "the increment succeeded, the redemption hit the UNIQUE constraint",
        )
        after = _coupon_and_stock(n, code, stock_id)
        order = n.sql(
            "SELECT status, subtotal, discount, total, coupon_id FROM orders_order "
            "WHERE id = %s",
            [placed.order.pk],
        )
        n.expect(
            placed.coupon_note == "This coupon was already used by this customer."
            and after == [(before[0][0], before[0][1] + 1)]
            and order[0][0] == "pending"
            and order[0][2] == Decimal("0.00")
            and order[0][4] is None,
            "the increment inside the savepoint was undone with it (times_used "
            "unchanged), while the order and its reservation stand, at full price",
        )
        n.say("    ROLLBACK  -- the lab's transaction")


def _coupon_and_stock(n, code, stock_id):
    return n.sql(
        "SELECT c.times_used, s.reserved FROM orders_coupon AS c, "
        "catalog_stock_level AS s WHERE c.code = %s AND s.id = %s",
        [code, stock_id],
    )


def _kind(sql: str) -> str:
    if sql.startswith("SAVEPOINT"):
        return "savepoint"
    if sql.startswith("ROLLBACK TO SAVEPOINT"):
        return "rollback to"
    if sql.startswith('UPDATE "orders_coupon"'):
        return "coupon update"
    if sql.startswith('INSERT INTO "orders_coupon_redemption"'):
        return "redemption insert"
    return "other"
