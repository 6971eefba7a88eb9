"""Lab `isolation` (11): no dirty reads even at READ UNCOMMITTED, non-repeatable
reads at READ COMMITTED, and a write skew that only SERIALIZABLE stops.
"""

from __future__ import annotations

import psycopg
from django.db import connections
from django.test.utils import CaptureQueriesContext

from orders.labs import strategies
from orders.labs._common import (
    COUPON_SQL,
    READ_STOCK,
    _committed_rows,
    _customers,
    _error_line,
    _names,
    _orders,
    _sessions,
    _show_captured,
    _stock_rows,
)
from shop.lab import LabFailed, Narrator, lab

COUPON_USAGE = """
SELECT (SELECT usage_limit FROM orders_coupon WHERE id = %(coupon)s) AS usage_limit,
       (SELECT count(*) FROM orders_coupon_redemption
        WHERE coupon_id = %(coupon)s) AS used
"""
REDEEM = """
INSERT INTO orders_coupon_redemption (coupon_id, order_id, customer_id, created_at)
VALUES (%(coupon)s, %(order)s, %(customer)s, now())
"""


@lab(
    "isolation",
    chapter="11",
    summary="No dirty reads; non-repeatable reads; write skew vs SERIALIZABLE",
)
def isolation(n: Narrator) -> None:
    with _committed_rows(n, "11-iso") as observer, _sessions(2) as (a, b):
        stock_id = _stock_rows(n, "11-iso", cursor=observer, label="setup")[0][0]
        _dirty_read(n, a, b, stock_id)
        _non_repeatable_read(n, a, b, stock_id)
        _write_skew(n, a, b, observer)


def _dirty_read(n, a, b, stock_id):
    n.step("READ UNCOMMITTED: PostgreSQL still never shows uncommitted rows")
    n.sql("BEGIN", cursor=a, label="session A")
    n.sql(
        "UPDATE catalog_stock_level SET quantity_on_hand = 999 WHERE id = %s",
        [stock_id],
        cursor=a,
        label="session A, not committed",
    )
    n.sql("BEGIN ISOLATION LEVEL READ UNCOMMITTED", cursor=b, label="session B")
    level = n.sql("SHOW transaction_isolation", cursor=b, label="session B")
    seen = n.sql(READ_STOCK, [stock_id], cursor=b, label="session B")
    n.expect(
        level == [("read uncommitted",)] and seen == [(10,)],
        "B asked for READ UNCOMMITTED and still read 10, not A's 999: in "
        "PostgreSQL it behaves exactly like READ COMMITTED",
    )
    n.sql("ROLLBACK", cursor=a, label="session A")
    n.sql("COMMIT", cursor=b, label="session B")


def _non_repeatable_read(n, a, b, stock_id):
    restock = (
        "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand + 5 "
        "WHERE id = %s"
    )
    n.step("READ COMMITTED: the same SELECT twice, two answers")
    n.sql("BEGIN", cursor=b, label="session B (READ COMMITTED, the default)")
    first = n.sql(READ_STOCK, [stock_id], cursor=b, label="session B")
    n.sql(restock, [stock_id], cursor=a, label="session A, autocommit: commits at once")
    second = n.sql(READ_STOCK, [stock_id], cursor=b, label="session B, again")
    n.expect(
        first == [(10,)] and second == [(15,)],
        "a non-repeatable read: each statement takes a new snapshot, so B's "
        "second read sees A's commit",
    )
    n.sql("COMMIT", cursor=b, label="session B")

    n.step("REPEATABLE READ: one snapshot for the whole transaction")
    n.sql("BEGIN ISOLATION LEVEL REPEATABLE READ", cursor=b, label="session B")
    first = n.sql(READ_STOCK, [stock_id], cursor=b, label="session B")
    n.sql(restock, [stock_id], cursor=a, label="session A, autocommit: commits at once")
    second = n.sql(READ_STOCK, [stock_id], cursor=b, label="session B, again")
    n.expect(
        first == second == [(15,)],
        "B reads 15 both times: its snapshot was taken at its first statement",
    )
    n.expect_error(
        lambda: n.sql(
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand - 1 "
            "WHERE id = %s",
            [stock_id],
            cursor=b,
            label="session B writes the row A changed since B's snapshot",
        ),
        sqlstate="40001",
        claim="REPEATABLE READ refuses to update a row changed after the "
        "snapshot (40001): no lost update, but the transaction must be retried",
    )
    n.sql("ROLLBACK", cursor=b, label="session B")


def _write_skew(n, a, b, observer):
    n.step("Write skew: a one-use coupon, enforced by counting its redemptions")
    customers = _customers(n, "11-iso", 2, cursor=observer, label="setup")
    orders = [_orders(n, c, 1, cursor=observer)[0] for c in customers]
    coupon = n.sql(
        COUPON_SQL,
        {"code": _names("11-iso")["code"], "usage_limit": 1, "times_used": 0},
        cursor=observer,
        label="setup: usage_limit 1",
    )[0][0]
    n.say(
        "    Each session checks the limit by counting, then inserts its own\n"
        "    redemption (orders/labs/strategies.py:coupon_redeem_by_count),\n"
        "    step by step."
    )
    redemptions = [
        {"coupon": coupon, "order": order, "customer": customer}
        for order, customer in zip(orders, customers, strict=True)
    ]

    outcome = _race_for_coupon(n, a, b, "REPEATABLE READ", redemptions)
    used = n.sql(COUPON_USAGE, {"coupon": coupon}, cursor=observer, label="afterwards")
    n.expect(
        outcome is None and used == [(1, 2)],
        "under REPEATABLE READ both committed: 2 redemptions of a 1-use coupon. "
        "Neither wrote a row the other wrote, so no snapshot rule was broken",
    )
    n.sql(
        "DELETE FROM orders_coupon_redemption WHERE coupon_id = %s",
        [coupon],
        cursor=observer,
        label="undo, to race again",
    )

    outcome = _race_for_coupon(n, a, b, "SERIALIZABLE", redemptions)
    n.expect(
        outcome is not None and outcome.sqlstate == "40001",
        "under SERIALIZABLE one of the two is aborted with 40001: no serial order "
        "of the two transactions could have produced both results",
    )
    n.sql("ROLLBACK", cursor=b, label="session B")

    n.say("\n    The retry: session B runs the whole transaction again.")
    n.sql("BEGIN ISOLATION LEVEL SERIALIZABLE", cursor=b, label="session B")
    used = n.sql(COUPON_USAGE, {"coupon": coupon}, cursor=b, label="session B")
    n.say("    -- 1 use of 1: session B inserts nothing")
    n.sql("COMMIT", cursor=b, label="session B")
    n.expect(used == [(1, 1)], "the retry sees A's redemption and stops")

    n.say(
        "\n    The shop's function does the same, retried by "
        "shop/db_retry.py:retry_on_conflict:"
    )
    n.say(
        f"    coupon_redeem_by_count(coupon_id={coupon}, order_id={orders[1]}, "
        f"customer_id={customers[1]}, isolation='serializable')"
    )
    with CaptureQueriesContext(connections["default"]) as captured:
        redeemed = strategies.coupon_redeem_by_count(
            coupon_id=coupon,
            order_id=orders[1],
            customer_id=customers[1],
            isolation="serializable",
        )
    _show_captured(n, captured)
    n.say(f"    -> {redeemed}")
    used = n.sql(COUPON_USAGE, {"coupon": coupon}, cursor=observer, label="afterwards")
    n.expect(
        redeemed is False and used == [(1, 1)],
        "it returns False: the limit holds, 1 redemption of 1",
    )


def _race_for_coupon(n, a, b, level, redemptions):
    """Interleave two redemptions; return B's error, or None if both committed."""
    n.say(f"\n    -- both at {level}:")
    for cursor, name in ((a, "session A"), (b, "session B")):
        n.sql(f"BEGIN ISOLATION LEVEL {level}", cursor=cursor, label=name)
        rows = n.sql(
            COUPON_USAGE,
            {"coupon": redemptions[0]["coupon"]},
            cursor=cursor,
            label=name,
        )
        if rows != [(1, 0)]:
            raise LabFailed(f"{name} expected 0 uses of 1, found {rows}")
    n.say("    -- both counted 0 uses of 1: each goes ahead")
    n.sql(REDEEM, redemptions[0], cursor=a, label="session A")
    try:
        n.sql(REDEEM, redemptions[1], cursor=b, label="session B")
        n.sql("COMMIT", cursor=a, label="session A")
        n.sql("COMMIT", cursor=b, label="session B")
    except psycopg.errors.SerializationFailure as exc:
        n.say(_error_line(exc))
        if a.connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            n.sql("COMMIT", cursor=a, label="session A")
        return exc
    return None
