"""The plan reader of the labs of chapters 06 and 14 (catalog/labs/plans.py).

The labs check their claims against EXPLAIN's text as PostgreSQL prints it;
these tests hold the reader to that text, a plan `make plans` captured on
the large seed included, without a database.
"""

from pathlib import Path

from catalog.labs.plans import Plan

SNIPPETS = Path(__file__).resolve().parents[2] / "docs" / "snippets" / "plans"

TEMPORARY_TABLE_PLAN = """\
Aggregate  (cost=12.67..12.68 rows=1 width=8) (actual time=0.076..0.076 rows=1 loops=1)
  Buffers: shared hit=3, local hit=149 read=255
  ->  Index Only Scan using lab_stock_level_covering on lab_stock_level  \
(cost=0.42..10.66 rows=402 width=8) (actual time=0.023..0.055 rows=400 loops=1)
        Index Cond: ((variant_id >= 1000) AND (variant_id <= 1199))
        Heap Fetches: 0
        Buffers: local hit=1 read=5
Planning:
  Buffers: shared hit=13
Planning Time: 0.057 ms
Execution Time: 0.091 ms"""

INSERT_PLAN = """\
Insert on lab_index_cost  (cost=0.00..1175.00 rows=0 width=0) (actual rows=0 loops=1)
  WAL: records=87565 bytes=10542560
  ->  Function Scan on generate_series n  (cost=0.00..1175.00 rows=10000 width=989) \
(actual rows=10000 loops=1)
Planning Time: 0.115 ms
Execution Time: 148.243 ms"""


def test_a_captured_plan_reads_as_its_nodes():
    plan = Plan.parse((SNIPPETS / "product-list-price.txt").read_text())

    assert plan.top.kind == "Limit"
    (scan,) = plan.find("Index Scan", relation="catalog_product")
    assert scan.index == "catalog_product_price_idx"
    assert scan.rows == 21 and scan.loops == 1
    assert scan.estimate > scan.rows
    assert plan.top.blocks > 0
    assert plan.execution_ms is not None
    # The subplans' scans are found too, by kind and by table.
    assert plan.find("Index Scan", relation="catalog_product_variant")


def test_shared_and_local_buffers_are_counted_and_planning_is_no_node():
    plan = Plan.parse(TEMPORARY_TABLE_PLAN)

    assert [node.kind for node in plan.nodes] == ["Aggregate", "Index Only Scan"]
    assert plan.top.blocks == 3 + 149 + 255
    (scan,) = plan.find("Index Only Scan")
    assert scan.details["Heap Fetches"] == "0"
    assert scan.blocks == 6
    assert plan.execution_ms == 0.091


def test_without_timing_the_rows_and_the_wal_are_still_read():
    plan = Plan.parse(INSERT_PLAN)

    assert plan.top.kind == "Insert" and plan.top.relation == "lab_index_cost"
    assert plan.top.wal_bytes == 10542560
    assert plan.find("Function Scan")[0].rows == 10000


def test_a_bitmap_index_scan_names_its_index():
    # A search of two words, as typed: the GIN index finds the matches.
    plan = Plan.parse((SNIPPETS / "product-list-search-typing.txt").read_text())

    (bitmap,) = plan.find("Bitmap Index Scan", index="catalog_product_search_gin")
    assert bitmap.relation is None
    assert "@@" in bitmap.details["Index Cond"]


def test_a_backward_index_only_scan_names_its_index_and_table():
    # A search of one word: a page of the posting index, best rank first.
    plan = Plan.parse((SNIPPETS / "product-list-search.txt").read_text())

    (scan,) = plan.find("Index Only Scan", index="catalog_posting_rank_idx")
    assert scan.kind == "Index Only Scan Backward"
    assert scan.relation == "catalog_search_posting"
    assert scan.rows is not None and scan.rows <= 25
    assert "lexeme = " in scan.details["Index Cond"]
