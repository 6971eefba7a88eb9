"""Lab `list-indexes` (14): the product list's own indexes, each used by the
query it was made for: composite (category, then price), partial (only
listed products) and GIN full-text (the search document).

Everything runs as shop_owner in one transaction that is rolled back: the
lab's 20,000 products, their statistics, and the full twin of the partial
index it builds for comparison (in a savepoint, so the exclusive lock that
DROP INDEX takes on catalog_product is released at once). Rolled back, the
rows still leave dead versions and index entries behind, which VACUUM
(autovacuum, soon after) clears.
"""

from __future__ import annotations

from unittest.mock import patch

import sqlparse
from django.db import connections

from catalog import selectors
from catalog.labs.plans import catalog_bulk, explain, relation_bytes
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

PRODUCTS = 20_000
PAGE = 21
COMPOSITE = "catalog_product_cat_price_idx"
PARTIAL = "catalog_product_price_idx"
FULL_TEXT = "catalog_product_search_gin"

INDEXES_SQL = """
SELECT index.relname AS index, pg_am.amname AS method,
       pg_get_expr(pg_index.indpred, pg_index.indrelid) AS partial_where
FROM pg_index
JOIN pg_class AS index ON index.oid = pg_index.indexrelid
JOIN pg_am ON pg_am.oid = index.relam
WHERE pg_index.indrelid = 'catalog_product'::regclass
ORDER BY index.relname
"""


@lab(
    "list-indexes",
    chapter="14",
    summary="the product list's composite, partial and GIN full-text indexes, "
    "each used by its query",
)
def list_indexes(n: Narrator) -> None:
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.step("Setup, as shop_owner, in a transaction that is rolled back")
        n.sql("SET LOCAL lock_timeout = '5s'", cursor=cursor)
        catalog_bulk(n, "14", products=PRODUCTS, cursor=cursor)
        n.sql(
            "SET CONSTRAINTS ALL IMMEDIATE",
            cursor=cursor,
            label="check the deferred foreign keys now (chapter 12): a table with "
            "checks pending cannot get an index, which the lab builds below",
        )
        n.sql(
            "ANALYZE catalog_category, catalog_product, catalog_product_variant",
            cursor=cursor,
        )
        n.sql(INDEXES_SQL, cursor=cursor, label="catalog_product's indexes")
        composite(n, cursor)
        partial(n, cursor)
        full_text(n, cursor)


def product_list_sql(n: Narrator, call: str, queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    # Only the part that decides the plan; the select list is chapter 05's.
    where = sql[sql.index(' FROM "catalog_product" ') :]
    n.show_sql(
        "SELECT ...\n" + sqlparse.format(where.strip(), reindent=True),
        params,
        label=call,
    )
    return sql, params


def composite(n: Narrator, cursor) -> None:
    n.step(f"Composite: {COMPOSITE} (category_id, min_price, id)")
    slug = "lab-14-2"
    ids = [
        id_
        for (id_,) in n.sql(
            read_sql("catalog/sql/queries/category_subtree_ids_v01.sql"),
            [slug],
            cursor=cursor,
            label="category_subtree_ids(slug='lab-14-2'), on the lab's connection",
        )
    ]
    # The selector reads the subtree on the app's connection, which cannot
    # see this transaction's categories; it is handed the ids read above.
    with patch.object(selectors, "category_subtree_ids", return_value=ids):
        queryset = selectors.product_list(category=slug, ordering="price")[:PAGE]
    sql, params = product_list_sql(
        n,
        f"catalog.selectors.product_list(category={slug!r}, ordering='price')",
        queryset,
    )
    plan = explain(n, sql, params, what="the query above", cursor=cursor)
    scans = plan.find("Index Scan", index=COMPOSITE)
    n.expect(
        len(scans) == 1 and "category_id" in scans[0].details.get("Index Cond", ""),
        "the equality on category_id is the index's first column: the scan "
        "starts at the category's first entry (Index Cond)",
    )
    n.expect(
        not plan.find("Sort") and scans[0].rows == PAGE,
        f"and within one category the entries are in (min_price, id) order: no "
        f"Sort, {PAGE} rows read for {PAGE} shown",
    )

    n.say(
        "\nThe order of the columns decides which queries an index serves. A price\n"
        "range over every category cannot use it: its first column is not\n"
        "constrained, so the matching entries are scattered through it."
    )
    queryset = selectors.product_list(min_price=20, max_price=40, ordering="price")
    sql, params = product_list_sql(
        n,
        "catalog.selectors.product_list(min_price=20, max_price=40, ordering='price')",
        queryset[:PAGE],
    )
    plan = explain(n, sql, params, what="the query above", cursor=cursor)
    n.expect(
        not plan.find(index=COMPOSITE) and bool(plan.find("Index Scan", index=PARTIAL)),
        f"that query reads {PARTIAL} (min_price, id), whose first column is the range",
    )


def partial(n: Narrator, cursor) -> None:
    n.step(f"Partial: {PARTIAL} holds listed products only")
    n.say(
        "Its WHERE is the product list's own (catalog.models.LISTED): the planner\n"
        "may use it for a query whose WHERE implies that condition, and for no\n"
        "other."
    )
    queryset = selectors.product_list(ordering="price")[:PAGE]
    sql, params = product_list_sql(
        n, "catalog.selectors.product_list(ordering='price')", queryset
    )
    plan = explain(n, sql, params, what="the query above", cursor=cursor)
    (scan,) = plan.find("Index Scan", index=PARTIAL)
    n.expect(
        "Filter" not in scan.details,
        "no Filter under the scan: every entry of a partial index already "
        "satisfies the list's WHERE",
    )
    every = (
        "SELECT id, name, min_price FROM catalog_product "
        "ORDER BY min_price, id LIMIT 21"
    )
    n.say("\nA query about every product, listed or not, may not use it:")
    plan = explain(n, every, cursor=cursor)
    n.expect(
        not plan.find(index=PARTIAL),
        "without the listed condition in its WHERE, the partial index could "
        "miss rows, so the planner does not consider it",
    )

    n.say(
        "\nThe same index without its WHERE, and a fresh copy of it with, built\n"
        "side by side (the shop's own has the dead entries of rolled-back runs):"
    )
    n.sql("SAVEPOINT full_index", cursor=cursor)
    n.sql(
        "CREATE INDEX lab_product_price_full ON catalog_product (min_price, id)",
        cursor=cursor,
    )
    n.sql(
        "CREATE INDEX lab_product_price_partial ON catalog_product (min_price, id) "
        "WHERE is_active AND min_price IS NOT NULL",
        cursor=cursor,
    )
    (full_bytes, partial_bytes) = (
        relation_bytes(cursor, name)
        for name in ("lab_product_price_full", "lab_product_price_partial")
    )
    n.table(
        ["index", "bytes"],
        [
            ("lab_product_price_full", f"{full_bytes:,}"),
            ("lab_product_price_partial", f"{partial_bytes:,}"),
        ],
    )
    n.expect(
        partial_bytes < full_bytes,
        "the partial index is smaller by the rows it leaves out",
    )
    n.sql(f"DROP INDEX {PARTIAL}, lab_product_price_partial", cursor=cursor)
    plan = explain(n, sql, params, what="the product list's query", cursor=cursor)
    (scan,) = plan.find("Index Scan", index="lab_product_price_full")
    n.expect(
        "Filter" in scan.details,
        "with only the full index, the listed condition becomes a Filter: rows "
        "that are not listed are fetched from the table and thrown away",
    )
    n.sql(
        "ROLLBACK TO SAVEPOINT full_index",
        cursor=cursor,
        label="the shop's index is back, the lab's are gone",
    )


def full_text(n: Narrator, cursor) -> None:
    n.step(f"GIN full-text: {FULL_TEXT} on search_document")
    n.sql(
        "SELECT name, search_document FROM catalog_product WHERE slug = %s",
        ["lab-14-p1"],
        cursor=cursor,
        label="what is indexed: each lexeme, its positions, its weight (A name, "
        "B description)",
    )
    queryset = selectors.product_list(search="walnut lam")[:PAGE]
    sql, params = product_list_sql(
        n, "catalog.selectors.product_list(search='walnut lam')", queryset
    )
    plan = explain(n, sql, params, what="the query above", cursor=cursor)
    bitmap = plan.find("Bitmap Index Scan", index=FULL_TEXT)
    n.expect(
        len(bitmap) == 1 and "@@" in bitmap[0].details.get("Index Cond", ""),
        "the search is answered by the GIN index: one posting list per lexeme "
        "('walnut', and every one starting with 'lam'), intersected",
    )
    (heap,) = plan.find("Bitmap Heap Scan", relation="catalog_product")
    n.say(
        f"It found {heap.rows:,} matches; ranking needs every one of them\n"
        "(ts_rank_cd in the Sort), which is why a ranked search costs more than\n"
        "an ordering an index holds."
    )
