"""`make plans` (bench/plans.py), run on a small seed so that it cannot rot.

The real run takes a large seed and a couple of minutes; these run its
parts on the suite's test database: every hot request answers and leaves a
plan per statement, the checkout's writes included, and the sequential-scan
check finds what it must.
"""

import re

import pytest
from django.db import connections

from bench import plans
from shop.seeding import plan_for, seed_database
from tests.catalog.factories import VariantFactory
from tests.dbs import ALL_DATABASES


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_every_hot_request_leaves_its_plans(tmp_path):
    seed_database(plan=plan_for("small"))

    with plans.app_conditions():
        requests = plans.collect(deep_page=2, repeat=1, aliases=("default",))

    by_name = {r.name: r for r in requests}
    assert {name for name, _, _ in plans.PRODUCT_LISTS} <= set(by_name)
    assert {"product-detail", "cart", "order-list", "checkout"} <= set(by_name)
    for request in requests:
        assert request.explained, f"{request.name}: no statement was explained"
        assert all("Planning Time" in s.plan for s in request.explained)
    checkout = by_name["checkout"].explained
    # Its writes have plans too, run in savepoints that were rolled back.
    assert any(re.search(r"(Update|Insert) on ", s.plan) for s in checkout)
    assert "Trigger catalog_variant_min_price_update" in "\n".join(
        s.plan for s in by_name["variant-price-change"].explained
    )
    assert all(r.request_seconds and r.sql_seconds for r in requests if r.read_only)

    plans.write_snippets(tmp_path, requests, "-- header", plans.table(requests))
    assert (tmp_path / "product-list-price-deep.txt").read_text().count("-- statement")
    assert "| ordering=price |" in (tmp_path / "summary.md").read_text()


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_sequential_scan_of_a_large_table_is_found():
    VariantFactory.create_batch(3)
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")
    scan = plans.Statement(
        "default",
        "SELECT * FROM catalog_product",
        plan="Seq Scan on catalog_product  (cost=0.00..1.03 rows=3 width=8)",
    )
    index = plans.Statement(
        "default",
        "SELECT * FROM catalog_product WHERE id = 1",
        plan="Index Scan using catalog_product_pkey on catalog_product",
    )
    request = plans.Request("list", "list", "GET", "/", statements=[scan, index])

    assert plans.seq_scans([request], max_rows=2) == [
        "list: Seq Scan on catalog_product (3 rows) in\n"
        "    SELECT * FROM catalog_product"
    ]
    assert plans.seq_scans([request], max_rows=3) == []
