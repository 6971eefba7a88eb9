"""Lab `joins` (07): inner, outer, anti and self joins, on the reports' own SQL.

Everything runs in one transaction that is rolled back: a few customers,
one of them with orders, made for the lab; the reports' statements read the
whole database as staff, as the API runs them.
"""

from __future__ import annotations

from analytics.labs._common import explain_analyzed
from analytics.reports import latest_window
from orders.labs._common import _customers, _orders
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

TAG = "07"
REPORTS = "analytics/sql/reports/"


def _join_node(plan: list[str]) -> str:
    """The first join node of a plan: 'Hash Anti Join', 'Nested Loop Left Join'..."""
    for line in plan:
        text = line.strip().removeprefix("->").strip()
        if " Join" in text:
            return text.split("  ")[0].split(" (")[0]
    return ""


@lab(
    "joins",
    chapter="07",
    summary="Inner, left, anti, full and self joins; NOT IN's NULL trap",
)
def joins(n: Narrator) -> None:
    with rolled_back("default"):
        n.say("    BEGIN")
        n.act_as_staff()
        ids = _customers(n, TAG, 3, label="three customers")
        _orders(n, ids[0], 2, label="two orders for the first")
        lab_ids = {"ids": ids}

        n.step("INNER JOIN keeps the pairs that match; LEFT JOIN keeps every left row")
        inner = n.sql(
            "SELECT c.id AS customer_id, o.id AS order_id FROM accounts_customer c "
            "JOIN orders_order o ON o.customer_id = c.id "
            "WHERE c.id = ANY (%(ids)s) ORDER BY 1, 2",
            lab_ids,
        )
        left = n.sql(
            "SELECT c.id AS customer_id, o.id AS order_id FROM accounts_customer c "
            "LEFT JOIN orders_order o ON o.customer_id = c.id "
            "WHERE c.id = ANY (%(ids)s) ORDER BY 1, 2",
            lab_ids,
        )
        n.expect(
            len(inner) == 2 and len(left) == 4
            and [row[1] for row in left if row[0] != ids[0]] == [None, None],
            "inner: the first customer's 2 orders; left: those, and one row of "
            "NULLs for each customer without orders",
        )  # fmt: skip

        n.step("Customers who never ordered: NOT EXISTS and LEFT JOIN ... IS NULL")
        params = {"limit": 1_000_000}
        not_exists_sql = read_sql(REPORTS + "customers_never_ordered_v01.sql")
        left_join_sql = read_sql(REPORTS + "customers_never_ordered_left_join_v01.sql")
        by_not_exists = n.sql(not_exists_sql, params, label="the API's form", limit=3)
        by_left_join = n.sql(left_join_sql, params, label="the outer join", limit=3)
        n.expect(
            by_not_exists == by_left_join
            and {ids[1], ids[2]} <= {r[0] for r in by_not_exists},
            "both forms find the same customers, the lab's two without orders "
            "among them",
        )
        first = explain_analyzed(n, not_exists_sql, params, "EXPLAIN, NOT EXISTS")
        second = explain_analyzed(
            n, left_join_sql, params, "EXPLAIN, LEFT JOIN ... IS NULL"
        )
        n.expect(
            "Anti Join" in _join_node(first) and "Anti Join" in _join_node(second),
            "the planner makes both an anti join: it stops at a customer's first "
            f"order ({_join_node(first)}; {_join_node(second)})",
        )
        # The usual advice, "test the primary key": same rows, other plan.
        by_key_sql = left_join_sql.replace(
            "WHERE o.customer_id IS NULL", "WHERE o.id IS NULL"
        )
        by_key = n.sql(by_key_sql, params, label="testing o.id instead", limit=3)
        third = explain_analyzed(n, by_key_sql, params, "EXPLAIN, testing o.id")
        n.expect(
            by_key == by_not_exists
            and "Anti Join" not in _join_node(third)
            and any("Rows Removed by Filter" in line for line in third),
            "testing o.id finds the same customers but is no anti join: every "
            f"order is joined, then filtered out ({_join_node(third)})",
        )

        n.step("NOT IN and one NULL: no answer at all")
        trap = n.sql(
            "SELECT count(*) FROM accounts_customer c WHERE c.id = ANY (%(ids)s) "
            "AND c.id NOT IN (SELECT customer_id FROM orders_order "
            "UNION ALL SELECT NULL)",
            lab_ids,
        )
        n.expect(
            trap[0][0] == 0,
            "x NOT IN (..., NULL) is never true, only false or unknown: 0 rows, "
            "where NOT EXISTS found two",
        )

        n.step("FULL JOIN: the categories without sales, from the report")
        window = latest_window(365)
        full_sql = read_sql(REPORTS + "categories_without_sales_v01.sql")
        full = n.sql(full_sql, window.params(), label="the report", limit=5)
        right_sql = full_sql.replace(
            "FROM sales AS s\nFULL JOIN catalog_category AS c",
            "FROM sales AS s\nRIGHT JOIN catalog_category AS c",
        ).replace(
            "WHERE s.category_id IS NULL OR c.id IS NULL",
            "WHERE s.category_id IS NULL",
        )
        right = n.sql(
            right_sql, window.params(), label="the same, as a RIGHT JOIN", limit=5
        )
        n.expect(
            right == full and right_sql != full_sql,
            "with no sale lacking its category, RIGHT and FULL find the same rows",
        )

        n.step("A self-join: products bought in the same order")
        pairs = n.sql(
            read_sql(REPORTS + "bought_together_v01.sql"),
            {**window.params(), "min_orders": 1, "limit": 5},
            label="the report, the five most frequent pairs",
        )
        n.expect(
            all(row[0] < row[1] for row in pairs),
            "each pair once: a.product_id < b.product_id drops (y, x) and (x, x)",
        )
        n.say("    ROLLBACK")
