"""Lab `ledger-trigger` (09): every stock change lands in the ledger through
statement-level triggers, even raw SQL; a function, and a procedure that COMMITs.
"""

from __future__ import annotations

from decimal import Decimal

from orders.labs._common import (
    LEDGER_SQL,
    _committed_rows,
    _customers,
    _orders,
    _stock_rows,
)
from shop.lab import Narrator, lab, rolled_back

# What recovery writes once the gateway, asked by the order's reference, has
# no charge for it (orders/services/orders.py:checkout_recover): the only
# evidence on which the procedure releases a stale order.
PAYMENT_NOT_CAPTURED_SQL = """
INSERT INTO orders_payment (order_id, amount, status, gateway_reference, created_at)
VALUES (%s, 0, 'not_captured', '', now())
"""

ORDER_LINE_SQL = """
INSERT INTO orders_order_line
    (order_id, variant_id, warehouse_id, sku, product_name, unit_price, quantity)
SELECT %(order_id)s, v.id, %(warehouse_id)s, v.sku, 'Lab product', v.price,
       %(quantity)s
FROM catalog_product_variant AS v
WHERE v.id = %(variant_id)s
"""


@lab(
    "ledger-trigger",
    chapter="09",
    summary="Every stock change lands in the ledger, even raw SQL; a COMMITting CALL",
)
def ledger_trigger(n: Narrator) -> None:
    n.step("The triggers on catalog_stock_level, as the database holds them")
    rows = n.sql(
        """
        SELECT trigger_name, action_timing AS timing, event_manipulation AS event,
               action_orientation AS for_each, action_statement
        FROM information_schema.triggers
        WHERE event_object_table = 'catalog_stock_level'
        ORDER BY trigger_name
        """
    )
    found = {name: (timing, event, each) for name, timing, event, each, _ in rows}
    n.expect(
        found.get("orders_stock_ledger_insert") == ("AFTER", "INSERT", "STATEMENT")
        and found.get("orders_stock_ledger_update") == ("AFTER", "UPDATE", "STATEMENT"),
        "the ledger is two AFTER ... FOR EACH STATEMENT triggers, next to the "
        "row-level updated_at trigger",
    )

    with rolled_back("default"):
        n.say("    BEGIN")
        n.act_as_staff()  # it writes a customer's order below
        stock = _stock_rows(n, "09", variants=2, on_hand=5, label="one INSERT, 2 rows")
        ids = [row[0] for row in stock]
        ledger = n.sql(LEDGER_SQL, [ids], label="the ledger")
        n.expect(
            [(r[1], r[3]) for r in ledger] == [(5, "initial"), (5, "initial")],
            "the INSERT was recorded: one movement per new row, reason 'initial'",
        )

        n.step("A raw UPDATE, as from psql: no service, no reason given")
        n.sql(
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand + 3 "
            "WHERE id = %s",
            [ids[0]],
        )
        ledger = n.sql(LEDGER_SQL, [ids], label="the ledger")
        n.expect(
            (ledger[-1][1], ledger[-1][3]) == (3, "unspecified"),
            "the raw UPDATE is in the ledger too (+3, 'unspecified'): the trigger "
            "does not depend on the writer's good manners",
        )

        n.step("A service labels its change with transaction-local settings")
        n.sql(
            "SELECT set_config('app.stock_reason', %s, true)",
            ["restock"],
            label="what shop/db_context.py:set_locals sends",
        )
        n.sql(
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand + 2 "
            "WHERE id = ANY(%s)",
            [ids],
            label="one statement, two rows: the trigger runs once, for both",
        )
        ledger = n.sql(LEDGER_SQL, [ids], label="the ledger")
        n.expect(
            [(r[1], r[3]) for r in ledger[-2:]] == [(2, "restock"), (2, "restock")],
            "both rows of the UPDATE were recorded with the reason the transaction set",
        )
        rows = n.sql(
            """
            SELECT s.id, s.quantity_on_hand, sum(m.on_hand_delta) AS ledger_on_hand,
                   s.reserved, sum(m.reserved_delta) AS ledger_reserved
            FROM catalog_stock_level AS s
            JOIN orders_stock_movement AS m ON m.stock_level_id = s.id
            WHERE s.id = ANY(%s)
            GROUP BY s.id ORDER BY s.id
            """,
            [ids],
            label="the ledger adds up to the stock",
        )
        n.expect(
            all(r[1] == r[2] and r[3] == r[4] for r in rows),
            "for each stock row, the sum of its movements equals its counts",
        )

        n.step("The app's role cannot switch the ledger off")
        n.expect_sql_error(
            "ALTER TABLE catalog_stock_level "
            "DISABLE TRIGGER orders_stock_ledger_update",
            sqlstate="42501",
            contains="must be owner",
            claim="shop_app may write stock rows but not disable their triggers",
        )

        n.step("A function: orders_order_lines_total(order_id)")
        (customer,) = _customers(n, "09", 1)
        (order,) = _orders(n, customer, 1, age="30 years")
        n.sql(
            ORDER_LINE_SQL,
            {
                "order_id": order,
                "variant_id": stock[0][1],
                "warehouse_id": stock[0][3],
                "quantity": 1,
            },
        )
        rows = n.sql(
            "SELECT id, subtotal, orders_order_lines_total(id) AS from_lines "
            "FROM orders_order WHERE id = %s",
            [order],
        )
        n.expect(
            rows[0][1] == rows[0][2] == Decimal("19.90"),
            "the function recomputes the subtotal from the lines, inside the query",
        )

        n.step("A procedure that COMMITs cannot run inside a transaction block")
        n.sql(
            "UPDATE catalog_stock_level SET reserved = reserved + 1 WHERE id = %s",
            [stock[0][0]],
            label="the order's unit is reserved, as checkout's phase 1 would",
        )
        n.sql(
            PAYMENT_NOT_CAPTURED_SQL,
            [order],
            label="recovery asked the gateway by the order's reference: no charge",
        )
        n.say(
            "    -- the order is pending, dated 1999 and known unpaid: stale. The\n"
            "    -- procedure releases it, then COMMITs its batch, which BEGIN\n"
            "    -- ... forbids."
        )
        n.expect_sql_error(
            "CALL orders_release_stale_reservations("
            "now() - timestamptz '2000-01-01', 100, 0)",
            sqlstate="2D000",
            claim="CALL inside BEGIN fails at the procedure's COMMIT "
            "(2D000 invalid_transaction_termination)",
        )
        n.say("    ROLLBACK")

    n.step("The same CALL in autocommit: it commits batch by batch")
    with _committed_rows(n, "09") as setup:
        stock = _stock_rows(n, "09", on_hand=5, cursor=setup, label="setup, committed")
        stock_id, variant_id, warehouse_id = (
            stock[0].stock_id,
            stock[0].variant_id,
            stock[0].warehouse_id,
        )
        (customer,) = _customers(n, "09", 1, cursor=setup, label="setup, committed")
        (order,) = _orders(
            n,
            customer,
            1,
            age="30 years",
            cursor=setup,
            label="a checkout that never finished, long ago",
        )
        line = {
            "order_id": order,
            "variant_id": variant_id,
            "warehouse_id": warehouse_id,
            "quantity": 2,
        }
        n.sql(ORDER_LINE_SQL, line, cursor=setup)
        n.sql("BEGIN", cursor=setup, label="its phase 1 reserved 2 units")
        n.sql(
            "SELECT set_config('app.stock_reason', 'reserve', true), "
            "set_config('app.order_id', %s, true)",
            [str(order)],
            cursor=setup,
        )
        n.sql(
            "UPDATE catalog_stock_level SET reserved = reserved + 2 WHERE id = %s",
            [stock_id],
            cursor=setup,
        )
        n.sql("COMMIT", cursor=setup)
        n.sql(
            PAYMENT_NOT_CAPTURED_SQL,
            [order],
            cursor=setup,
            label="recovery asked the gateway: no charge under the order's reference",
        )
        n.say(
            "    -- the cut-off below is 2000-01-01, so only the lab's order from\n"
            "    -- 1999 is stale; the shop's own command passes 15 minutes. An\n"
            "    -- order with no answer from the gateway on file is never released."
        )
        rows = n.sql(
            "CALL orders_release_stale_reservations("
            "now() - timestamptz '2000-01-01', 100, 0)",
            cursor=setup,
            label="autocommit: no transaction block around the CALL",
        )
        n.expect(rows == [(1,)], "the procedure released one stale checkout")
        after = n.sql(
            """
            SELECT o.status, s.quantity_on_hand, s.reserved
            FROM orders_order AS o, catalog_stock_level AS s
            WHERE o.id = %s AND s.id = %s
            """,
            [order, stock_id],
            cursor=setup,
        )
        ledger = n.sql(LEDGER_SQL, [[stock_id]], cursor=setup, label="the ledger")
        n.expect(
            after == [("failed", 5, 0)]
            and ledger[-1][2:] == (-2, "stale_release", order),
            "the order failed, its 2 units are free again, and the ledger says "
            "why and for which order",
        )
