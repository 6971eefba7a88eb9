"""Lab `nosql-models` (20): the shop's SQL, run, beside the CQL and Cypher it
would become, printed and never run.

No Cassandra and no Neo4j server runs in this project. The lab runs the
PostgreSQL side of each comparison for real: the bought-together self-join
and the category-rollup recursive CTE, with their plans, on a small
catalogue and four orders of its own (in a transaction it rolls back, dated
in a window no other order falls in), and it counts on the database it runs
against how large the event log's partitions would grow. The .cql and
.cypher files under analytics/nosql/ are printed as they are, and the lab
says each time that they were not executed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from analytics.labs._common import explain_analyzed
from orders.labs._common import _customers
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

TAG = "20"
REPORTS = "analytics/sql/reports/"
NOSQL = "analytics/nosql/"
# A day no seeded order falls on: the reports' window then holds the lab's
# four orders only, whatever else the database has.
SINCE = datetime(2001, 2, 3, tzinfo=UTC)
UNTIL = datetime(2001, 2, 4, tzinfo=UTC)
# Four orders; each item one unit at 10.00.
BASKETS = [
    ["lamp", "bulb", "desk"],
    ["lamp", "bulb"],
    ["desk", "chair"],
    ["lamp", "bulb", "chair"],
]
CATALOGUE_SQL = """
-- The lab's category tree and products: home > lighting > desk-lamps, and
-- home > furniture; a lamp, a bulb, a desk and a chair, one variant each.
WITH home AS (
    INSERT INTO catalog_category (name, slug)
    VALUES ('Lab 20 home', 'lab-20-home')
    RETURNING id
), lighting AS (
    INSERT INTO catalog_category (name, slug, parent_id)
    SELECT 'Lab 20 lighting', 'lab-20-lighting', id FROM home
    RETURNING id
), desk_lamps AS (
    INSERT INTO catalog_category (name, slug, parent_id)
    SELECT 'Lab 20 desk lamps', 'lab-20-desk-lamps', id FROM lighting
    RETURNING id
), furniture AS (
    INSERT INTO catalog_category (name, slug, parent_id)
    SELECT 'Lab 20 furniture', 'lab-20-furniture', id FROM home
    RETURNING id
), category (name, id) AS (
    SELECT 'desk-lamps', id FROM desk_lamps
    UNION ALL SELECT 'lighting', id FROM lighting
    UNION ALL SELECT 'furniture', id FROM furniture
), product AS (
    INSERT INTO catalog_product
        (category_id, name, slug, description, is_active, created_at, updated_at)
    SELECT c.id, 'Lab 20 ' || p.name, 'lab-20-' || p.name, '', true, now(), now()
    FROM (VALUES ('lamp', 'desk-lamps'), ('bulb', 'lighting'),
                 ('desk', 'furniture'), ('chair', 'furniture'))
         AS p (name, category)
    JOIN category AS c ON c.name = p.category
    RETURNING id, slug
), variant AS (
    INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active)
    SELECT id, upper(slug), '', 10.00, true FROM product
    RETURNING id, product_id
), warehouse AS (
    INSERT INTO catalog_warehouse (code, name, is_default)
    VALUES ('LAB-20', 'Lab 20', false)
    RETURNING id
)
SELECT p.slug, p.id AS product_id, v.id AS variant_id, w.id AS warehouse_id
FROM product AS p
JOIN variant AS v ON v.product_id = p.id
CROSS JOIN warehouse AS w
ORDER BY p.id
"""
ORDERS_SQL = """
-- Paid orders, one per basket, all at the same moment, one line per item.
WITH basket AS (
    SELECT b.n, b.items
    FROM jsonb_array_elements(%(baskets)s::jsonb) WITH ORDINALITY AS b (items, n)
), new_order AS (
    INSERT INTO orders_order
        (customer_id, status, subtotal, discount, total, ship_line1, ship_line2,
         ship_city, ship_postal_code, ship_country, created_at, updated_at,
         paid_at, payment_reference)
    SELECT %(customer_id)s, 'paid', 10.00 * jsonb_array_length(b.items), 0,
           10.00 * jsonb_array_length(b.items), '1 Lab Street', '', 'Labville',
           '1000', 'US', %(at)s, %(at)s, %(at)s, 'lab-20-' || b.n
    FROM basket AS b
    RETURNING id, payment_reference
), line AS (
    INSERT INTO orders_order_line
        (order_id, variant_id, warehouse_id, sku, product_name, unit_price,
         quantity)
    SELECT o.id, v.id, %(warehouse_id)s, v.sku, p.slug, v.price, 1
    FROM basket AS b
    JOIN new_order AS o ON o.payment_reference = 'lab-20-' || b.n
    CROSS JOIN jsonb_array_elements_text(b.items) AS item (name)
    JOIN catalog_product AS p ON p.slug = 'lab-20-' || item.name
    JOIN catalog_product_variant AS v ON v.product_id = p.id
    RETURNING order_id, product_name
)
SELECT order_id, string_agg(product_name, ', ' ORDER BY product_name) AS products
FROM line
GROUP BY order_id
ORDER BY order_id
"""
TREE_SQL = """
WITH RECURSIVE level (id, depth) AS (
    SELECT id, 1 FROM catalog_category WHERE parent_id IS NULL
    UNION ALL
    SELECT c.id, l.depth + 1
    FROM catalog_category AS c
    JOIN level AS l ON c.parent_id = l.id
)
SELECT count(*) AS categories, max(depth) AS levels FROM level
"""
BUSIEST_DAY_SQL = """
SELECT created_at::date AS day, count(*) AS orders
FROM orders_order
GROUP BY 1
ORDER BY orders DESC, day
LIMIT 1
"""
BUSIEST_CUSTOMER_SQL = """
SELECT customer_id, count(*) AS orders,
       min(created_at)::date AS first, max(created_at)::date AS last
FROM orders_order
GROUP BY customer_id
ORDER BY orders DESC, customer_id
LIMIT 1
"""
LINES_PER_ORDER_SQL = """
SELECT round(avg(lines), 2) AS lines_per_order, max(lines) AS most
FROM (SELECT count(*) AS lines FROM orders_order_line GROUP BY order_id) AS o
"""
OUTBOX_KEYS_SQL = """
SELECT conname AS constraint_name, pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE conrelid = 'shop_outbox_event'::regclass AND contype IN ('p', 'u')
ORDER BY conname
"""


def _not_run(n: Narrator, path: str, engine: str) -> None:
    """Print a .cql or .cypher file as it is; it is never executed."""
    text = (Path(settings.BASE_DIR) / path).read_text(encoding="utf-8")
    n.say(f"    -- {path}: NOT RUN (no {engine} server here), printed as it is")
    for line in text.rstrip().splitlines():
        n.say(f"    | {line}" if line else "    |")


@lab(
    "nosql-models",
    chapter="20",
    summary="The self-join and recursive CTE, run, beside CQL and Cypher (not run)",
)
def nosql_models(n: Narrator) -> None:
    n.say(
        "    No Cassandra and no Neo4j server runs here: every .cql and .cypher "
        "text below is printed, never executed. The SQL is run."
    )
    with rolled_back("default"):
        n.say("    BEGIN")
        n.act_as_staff()
        slugs = _lab_rows(n)
        window = {"since": SINCE, "until": UNTIL}
        _bought_together(n, window, slugs)
        _category_rollup(n, window)
        _event_log(n)
        n.say("    ROLLBACK")


def _lab_rows(n: Narrator) -> dict[int, str]:
    n.step("A small catalogue and four paid orders, the lab's own")
    products = n.sql(CATALOGUE_SQL, label="setup")
    (customer_id,) = _customers(n, TAG, 1, label="one customer")
    n.sql(
        ORDERS_SQL,
        {
            "baskets": json.dumps(BASKETS),
            "customer_id": customer_id,
            "warehouse_id": products[0][3],
            "at": SINCE.replace(hour=12),
        },
        label="setup",
    )
    return {row[1]: row[0].removeprefix("lab-20-") for row in products}


def _bought_together(n: Narrator, window: dict, slugs: dict[int, str]) -> None:
    n.step("Bought together: the self-join the shop runs (PostgreSQL, run)")
    sql = read_sql(REPORTS + "bought_together_v01.sql")
    params = {**window, "min_orders": 1, "limit": 10}
    rows = n.sql(sql, params, label="analytics/sql/reports/bought_together_v01.sql")
    pairs = {frozenset((slugs[a], slugs[b])): count for a, b, count in rows}
    n.expect(
        pairs[frozenset(("lamp", "bulb"))] == 3
        and sorted(pairs.values()) == [1] * 5 + [3],
        "lamp and bulb were bought together 3 times; five other pairs once each",
    )
    made = sum(len(basket) * (len(basket) - 1) // 2 for basket in BASKETS)
    n.expect(
        sum(pairs.values()) == made,
        f"the join made k(k-1)/2 pairs for an order of k products: {made} in all "
        "for baskets of 3, 2, 2 and 3, so the work grows with the square of a "
        "basket",
    )
    plan = explain_analyzed(n, sql, params, "EXPLAIN (ANALYZE): the plan")
    n.expect(
        any("CTE Scan on order_products a" in line for line in plan)
        and any("CTE Scan on order_products b" in line for line in plan),
        "the paid orders' products are computed once (the CTE, referenced "
        "twice, is materialized) and joined with themselves: two scans, a and b",
    )
    n.step("The same report in Cypher, on a graph of the same rows (NOT RUN)")
    _not_run(n, NOSQL + "graph_model.cypher", "Neo4j")
    _not_run(n, NOSQL + "bought_together.cypher", "Neo4j")


def _category_rollup(n: Narrator, window: dict) -> None:
    n.step("Category rollup: the recursive CTE the shop runs (PostgreSQL, run)")
    sql = read_sql(REPORTS + "category_rollup_v01.sql")
    rows = n.sql(
        sql, window, label="analytics/sql/reports/category_rollup_v01.sql", limit=0
    )
    ours = [row for row in rows if row[1].startswith("lab-20-")]
    n.say("    -- the lab's categories among them:")
    n.table(["category_id", "slug", "parent_id", "own_units", "units", "revenue"], ours)
    units = {row[1].removeprefix("lab-20-"): (row[3], row[4]) for row in ours}
    n.expect(
        units
        == {
            "home": (0, 10),
            "lighting": (3, 6),
            "desk-lamps": (3, 3),
            "furniture": (4, 4),
        },
        "each category counts its own sales and all below it: lighting's 6 are "
        "its 3 bulbs and desk-lamps' 3 lamps; home, which sells nothing itself, "
        "has all 10",
    )
    plan = explain_analyzed(n, sql, window, "EXPLAIN (ANALYZE): the plan")
    ((categories, levels),) = n.sql(TREE_SQL, label="how deep the tree is, here")
    rounds = [
        int(match[1])
        for line in plan
        if "WorkTable Scan" in line and (match := re.search(r"loops=(\d+)", line))
    ]
    n.expect(
        any("Recursive Union" in line for line in plan) and rounds == [levels],
        f"the recursion is a Recursive Union: each round joins the rows the last "
        f"round found (the WorkTable) with their children, one level deeper, "
        f"until a round finds none: {levels} rounds for {levels} levels",
    )
    n.step("The same report in Cypher (NOT RUN)")
    _not_run(n, NOSQL + "category_rollup.cypher", "Neo4j")


def _event_log(n: Narrator) -> None:
    n.step("The event log: how large Cassandra's partitions would grow, counted here")
    day = n.sql(BUSIEST_DAY_SQL, label="the busiest day (one partition per day)")
    customer = n.sql(
        BUSIEST_CUSTOMER_SQL, label="the busiest customer (one partition per year)"
    )
    lines = n.sql(LINES_PER_ORDER_SQL, label="lines per order")
    n.expect(
        day[0][1] >= 1 and customer[0][1] >= 1 and lines[0][1] >= 1,
        "counted: an order through the API writes 2 order events and 4 per line "
        "(reserve, sale, cart line added and removed), so a partition holds "
        "about 2 + 4 x lines events per order counted here",
    )
    n.step("The outbox, where every event starts: its keys are rules")
    keys = n.sql(OUTBOX_KEYS_SQL, label="shop_outbox_event's primary and unique keys")
    n.expect(
        any("UNIQUE (aggregate_type, aggregate_id, sequence)" in row[1] for row in keys)
        and any("UNIQUE (event_id)" in row[1] for row in keys),
        "PostgreSQL refuses a second event in one aggregate's place, and a second "
        "copy of one event; a Cassandra key only says where a row is written, so "
        "the CQL below needs IF NOT EXISTS for the first rule",
    )
    n.step("The event log in CQL: one table per question (NOT RUN)")
    _not_run(n, NOSQL + "event_log.cql", "Cassandra")
