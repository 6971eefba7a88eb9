"""Each hot catalog query can use the index meant for it, shown on small data.

On a few rows the planner rightly prefers a sequential scan, so each check
takes the SQL a request really sent (captured while it ran) and asks for
its plan with `enable_seqscan` off, and with `enable_sort` off where an
index is meant to deliver the order: if the named index cannot do the job,
the plan shows a Seq Scan or a Sort instead. The settings are SET LOCAL in
the test's transaction, which is rolled back. `make plans` (bench/plans.py)
checks the same queries on the large seed, where the planner chooses.
"""

import re
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

SORT_NODE = re.compile(r"(^|->\s+)(Incremental )?Sort\b", re.MULTILINE)


# The tables the plans below read, analysed once the module's rows are in.
TABLES = (
    "catalog_category, catalog_product, catalog_product_variant, "
    "catalog_stock_level, catalog_search_posting"
)


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """A few rows, committed for the module and analysed: known statistics.

    On a few rows the planner's choices are close calls, made on whatever
    statistics autovacuum last sampled. Rows that only the test's own
    transaction can see are never sampled: after a test elsewhere had
    committed a seed (flushed since), the statistics described hundreds of
    rows no longer there, and the plans changed with autovacuum's timing.
    Committed and analysed here, the statistics are these rows' own. Each
    test still runs in a transaction that is rolled back, and the rows go
    at the end of the module.
    """
    with django_db_blocker.unblock():
        try:
            yield _committed_catalogue()
        finally:
            # Also when building it failed half way: a rerun with the test
            # database kept would otherwise meet these rows' unique slugs.
            # CASCADE: the tables that point at these (carts, orders,
            # reviews) hold nothing of this module; committed tests flush
            # after themselves. The statistics stay those of these rows
            # until autovacuum samples the emptied tables.
            with connections["owner"].cursor() as cursor:
                cursor.execute(f"TRUNCATE {TABLES}, catalog_warehouse CASCADE")


def _committed_catalogue():
    leaf = CategoryFactory(slug="lamps", parent=CategoryFactory(slug="lighting"))
    for n in range(30):
        product = ProductFactory(
            category=leaf if n % 2 else CategoryFactory(),
            name=f"Oak lamp {n}" if n % 3 else f"Walnut desk {n}",
        )
        variant = VariantFactory(product=product, price=Decimal(10 + n))
        StockLevelFactory(variant=variant, quantity_on_hand=n % 4)
    # Listed products no search below matches: with every product a match,
    # reading them all beats any index, and the planner says so.
    shelves = CategoryFactory(slug="shelves")
    for n in range(300):
        VariantFactory(product=ProductFactory(category=shelves, name=f"Pine shelf {n}"))
    with connections["owner"].cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLES}")
    return leaf


def captured(client, url, *, table="catalog_product"):
    """The SQL of the request's statement that reads `table` (the last one)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    sql = [q["sql"] for q in queries.captured_queries if f'"{table}"' in q["sql"]]
    return sql[-1], response.json()


def plan_of(sql, *, ordered=False):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if ordered:
            cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row for (row,) in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_sort")
    return plan


def assert_uses(plan, index, *, ordered=False):
    assert f" {index} " in plan or plan.rstrip().endswith(f" {index}"), plan
    if ordered:
        assert not SORT_NODE.search(plan), (
            f"the index did not deliver the order:\n{plan}"
        )


@pytest.mark.parametrize(
    "ordering, index",
    [
        ("newest", "catalog_product_created_idx"),
        ("oldest", "catalog_product_created_idx"),
        ("price", "catalog_product_price_idx"),
        ("-price", "catalog_product_price_idx"),
        ("name", "catalog_product_name_idx"),
        ("-name", "catalog_product_name_idx"),
    ],
)
def test_each_ordering_reads_its_index_in_order_on_every_page(
    api_client, catalogue, ordering, index
):
    url = f"/api/v1/products/?ordering={ordering}&page_size=5"
    first, body = captured(api_client, url)
    assert_uses(plan_of(first, ordered=True), index, ordered=True)

    deep, _ = captured(api_client, body["next"])
    plan = plan_of(deep, ordered=True)
    assert_uses(plan, index, ordered=True)
    # The keyset is the index's own condition: where the scan starts.
    assert "Index Cond: (ROW(" in plan, plan


@pytest.mark.parametrize("ordering", ["price", "-price"])
def test_a_category_in_price_order_reads_the_composite_index(
    api_client, catalogue, ordering
):
    url = f"/api/v1/products/?category=lamps&ordering={ordering}&page_size=3"
    first, body = captured(api_client, url)
    assert_uses(
        plan_of(first, ordered=True), "catalog_product_cat_price_idx", ordered=True
    )
    deep, _ = captured(api_client, body["next"])
    assert_uses(
        plan_of(deep, ordered=True), "catalog_product_cat_price_idx", ordered=True
    )


@pytest.mark.parametrize("ordering", ["price", "-price"])
def test_a_subtree_in_price_order_reads_the_composite_index_per_category(
    api_client, catalogue, ordering
):
    CategoryFactory(slug="floor-lamps", parent=catalogue.parent)
    url = f"/api/v1/products/?category=lighting&ordering={ordering}&page_size=3"
    first, body = captured(api_client, url)
    deep, _ = captured(api_client, body["next"])
    for sql in (first, deep):
        plan = plan_of(sql, ordered=True)
        # Each category's page (one branch, run per category by a LATERAL
        # join) is an ordered range read of (category, min_price, id) that
        # stops at the page's LIMIT. The outer merge of
        # those few rows is left out: with sorts priced out it walks any
        # index that avoids its sort; on the large seed `make plans` checks
        # it chooses the merge (product-list-category-middle-price-desc).
        branches = re.findall(
            r"Limit .*\n\s+->  Index (?:Only )?Scan(?: Backward)? using (\w+)", plan
        )
        assert branches == ["catalog_product_cat_price_idx"], plan
        assert "(category_id = partition_value.value)" in plan, plan
    assert "ROW(min_price, id)" in plan, plan


def test_price_filters_are_a_range_of_the_price_index(api_client, catalogue):
    sql, _ = captured(
        api_client, "/api/v1/products/?min_price=15&max_price=30&ordering=price"
    )
    plan = plan_of(sql, ordered=True)
    assert_uses(plan, "catalog_product_price_idx", ordered=True)
    assert "min_price >= 15" in plan.replace("(", "").replace(")", ""), plan


@pytest.mark.parametrize("search", ["walnut des", "oak lamp"])
def test_search_reads_the_gin_index(api_client, catalogue, search):
    sql, body = captured(api_client, f"/api/v1/products/?search={search}")
    assert body["results"]
    assert_uses(plan_of(sql), "catalog_product_search_gin")


@pytest.mark.parametrize("ordering", ["newest", "price"])
def test_a_one_word_search_in_another_order_is_a_filter(
    api_client, catalogue, ordering
):
    sql, body = captured(
        api_client, f"/api/v1/products/?search=lamp&ordering={ordering}"
    )
    assert body["results"]
    assert "catalog_search_posting" not in sql
    assert "@@" in sql


@pytest.mark.parametrize("search", ["lamp", "walnut"])
def test_a_one_word_search_reads_the_posting_index_in_rank_order(
    api_client, catalogue, search
):
    url = f"/api/v1/products/?search={search}&page_size=3"
    first, body = captured(api_client, url, table="catalog_search_posting")
    plan = plan_of(first, ordered=True)
    assert_uses(plan, "catalog_posting_rank_idx", ordered=True)
    assert "catalog_product_search_gin" not in plan, plan

    deep, _ = captured(api_client, body["next"], table="catalog_search_posting")
    plan = plan_of(deep, ordered=True)
    assert_uses(plan, "catalog_posting_rank_idx", ordered=True)
    # The keyset on the posting's own columns: where the scan starts.
    assert "Index Cond: ((lexeme = " in plan and "ROW(rank, product_id) <" in plan, plan


def test_the_sold_out_products_are_a_small_index_of_their_own(api_client, catalogue):
    first, body = captured(api_client, "/api/v1/products/?in_stock=false&page_size=3")
    deep, _ = captured(api_client, body["next"])
    for sql in (first, deep):
        plan = plan_of(sql, ordered=True)
        # The flag the stock triggers keep, not a probe of the stock per
        # product: the list's query no longer reads catalog_stock_level
        # but for the page's own `available` subquery.
        assert_uses(plan, "catalog_product_sold_out_idx", ordered=True)
    assert "Index Cond: (ROW(" in plan, plan


def test_in_stock_is_a_filter_on_the_column(api_client, catalogue):
    sql, _ = captured(api_client, "/api/v1/products/?in_stock=true")
    plan = plan_of(sql, ordered=True)
    assert_uses(plan, "catalog_product_created_idx", ordered=True)
    assert re.search(r"Filter: \(.*\bin_stock\)", plan), plan


def test_product_detail_finds_the_product_by_slug_and_its_variants_by_product(
    api_client, catalogue
):
    product = ProductFactory(slug="brass-lamp")
    VariantFactory(product=product)
    with CaptureQueriesContext(connection) as queries:
        assert api_client.get("/api/v1/products/brass-lamp/").status_code == 200
    product_sql, variants_sql = [
        q["sql"] for q in queries.captured_queries if "catalog_" in q["sql"]
    ]
    assert_uses(plan_of(product_sql), "catalog_product_slug_uniq")
    plan = plan_of(variants_sql)
    # By the product's index, as a plain or a bitmap scan: which one the
    # planner picks on a few rows turns on statistics an autoanalyze can
    # refresh mid-run, and both read the index, not the table.
    scan = r"(Index Scan using|Bitmap Index Scan on) catalog_product_variant_product_"
    assert re.search(scan, plan), plan
    assert "Index Cond: (product_id = " in plan, plan
    assert "Seq Scan on catalog_product_variant" not in plan, plan


def test_a_staff_variant_change_finds_the_variant_by_sku(staff_client, catalogue):
    variant = VariantFactory(sku="LAMP-OAK-01")
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.patch(
            f"/api/v1/variants/{variant.sku}/", {"price": "12.00"}, format="json"
        )
    assert response.status_code == 200
    (update,) = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")
    ]
    assert_uses(plan_of(update), "catalog_variant_sku_uniq")
