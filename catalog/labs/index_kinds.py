"""Lab `index-kinds` (14): three kinds of index the product list does not
use, each on a scratch table shaped like a shop table, each used by a query:

- covering (INCLUDE): an index-only scan of stock rows, which the visibility
  map makes cheap, and the HOT updates it costs a table written as often as
  the stock;
- BRIN on a copy of the audit log (shop_audit_log carries one on
  occurred_at): a few kilobytes that serve a time-range read;
- trigram (pg_trgm): the infix and misspelt matches a tsquery cannot make,
  and why the shop's search uses a prefix tsquery all the same.

The lab opens a session of its own as shop_owner: temporary tables vanish
with it, and VACUUM, which the visibility map and BRIN's summaries need,
cannot run inside a transaction block. pg_trgm is created inside a
transaction that is rolled back, so the database is left without it.
"""

from __future__ import annotations

from catalog.labs.plans import Plan, explain, relation_bytes
from shop.lab import Narrator, connect, lab

STOCK_ROWS = 200_000
AUDIT_ROWS = 200_000
SKUS = 100_000

SIZES_SQL = """
SELECT c.relname AS relation, pg_size_pretty(pg_relation_size(c.oid)) AS size
FROM pg_class AS c
WHERE c.relname = ANY (%s) AND c.relpersistence = 't'
  AND pg_table_is_visible(c.oid)
ORDER BY pg_relation_size(c.oid) DESC
"""


@lab(
    "index-kinds",
    chapter="14",
    summary="covering (INCLUDE) and the visibility map, BRIN on the audit log, "
    "trigram: each used by a query",
)
def index_kinds(n: Narrator) -> None:
    with connect("owner", autocommit=True) as conn, conn.cursor() as cursor:
        covering(n, cursor)
        brin(n, cursor)
        trigram(n, cursor)


# --- covering ------------------------------------------------------------

STOCK_SQL = """
INSERT INTO lab_stock_level
    (id, variant_id, warehouse_id, quantity_on_hand, reserved, updated_at)
SELECT n, 1 + mod(n * 7919, %(variants)s), 1 + mod(n, 2), 3 + mod(n * 37, 100),
       mod(n, 3), now()
FROM generate_series(1, %(rows)s) AS n
"""
# The shape of the product list's `available` (catalog.selectors), summed
# over a block of variants so that the pages read are worth counting.
AVAILABLE_SQL = """
SELECT sum(quantity_on_hand - reserved) AS available
FROM lab_stock_level
WHERE variant_id BETWEEN %s AND %s
"""
VARIANTS = (1000, 1199)
RESERVE_SQL = """
UPDATE lab_stock_level SET reserved = reserved + 1
WHERE variant_id BETWEEN %s AND %s
"""
HOT_SQL = """
SELECT n_tup_upd AS updated, n_tup_hot_upd AS hot_updated
FROM pg_stat_xact_user_tables
WHERE relid = 'lab_stock_level'::regclass
"""


def covering(n: Narrator, cursor) -> None:
    n.step("Covering: an index that answers the query by itself")
    n.say(
        "A temporary copy of catalog_stock_level's columns, its rows scattered\n"
        "as years of restocking leave them, with room on each page (fillfactor)."
    )
    n.sql(
        "CREATE TEMP TABLE lab_stock_level (LIKE catalog_stock_level "
        "INCLUDING DEFAULTS) WITH (fillfactor = 90)",
        cursor=cursor,
    )
    n.sql(STOCK_SQL, {"variants": STOCK_ROWS // 2, "rows": STOCK_ROWS}, cursor=cursor)
    n.sql(
        "CREATE INDEX lab_stock_level_variant ON lab_stock_level (variant_id)",
        cursor=cursor,
    )
    n.sql("ANALYZE lab_stock_level", cursor=cursor)

    plain = explain(n, AVAILABLE_SQL, VARIANTS, cursor=cursor)
    heap = plain.find("Bitmap Heap Scan") or plain.find("Index Scan")
    n.expect(
        bool(heap) and not plain.find("Index Only Scan"),
        "with an index on variant_id alone, every matching row is read from "
        "the table for its quantities",
    )
    hot = hot_updates(n, cursor)
    n.expect(
        hot[0] > 0 and hot[0] == hot[1],
        "and an UPDATE of reserved, a column no index holds, is a HOT update: "
        "a new row version on the same page, no index touched",
    )

    n.say("\nThe same index, covering: the quantities ride along in its leaves.")
    n.sql("DROP INDEX lab_stock_level_variant", cursor=cursor)
    n.sql(
        "CREATE INDEX lab_stock_level_covering ON lab_stock_level (variant_id) "
        "INCLUDE (quantity_on_hand, reserved)",
        cursor=cursor,
    )
    visible = "SELECT relpages, relallvisible FROM pg_class WHERE oid = %s::regclass"
    ((_, all_visible),) = n.sql(
        visible,
        ["lab_stock_level"],
        cursor=cursor,
        label="pages the visibility map marks all-visible, as the planner knows",
    )
    unvacuumed = explain(n, AVAILABLE_SQL, VARIANTS, cursor=cursor)
    fetches = heap_fetches(unvacuumed)
    # The planner knows relallvisible: with 0 it may not pick an index-only
    # scan at all; if it does, the scan still fetches every row's page.
    reads_table = bool(fetches) or (
        fetches is None and bool(unvacuumed.find("Bitmap Heap Scan"))
    )
    n.expect(
        all_visible == 0 and reads_table,
        "before VACUUM the covering index saves nothing: no page is known to "
        "be all-visible, so every row's visibility must still be checked in "
        "the table",
    )
    n.sql("VACUUM (ANALYZE) lab_stock_level", cursor=cursor)
    n.sql(visible, ["lab_stock_level"], cursor=cursor)
    vacuumed = explain(n, AVAILABLE_SQL, VARIANTS, cursor=cursor)
    n.expect(
        heap_fetches(vacuumed) == 0,
        "after VACUUM the visibility map marks every page all-visible: "
        "Heap Fetches: 0, the table is not read at all",
    )
    n.expect(
        vacuumed.top.blocks * 10 < plain.top.blocks,
        f"{vacuumed.top.blocks} pages instead of {plain.top.blocks}",
    )

    n.say("\nThe price, on a table the shop writes as often as its stock:")
    hot = hot_updates(n, cursor)
    n.expect(
        hot[0] > 0 and hot[1] == 0,
        "reserved is now in an index, so no UPDATE of it can be HOT: each one "
        "writes a new index entry too",
    )
    again = explain(n, AVAILABLE_SQL, VARIANTS, cursor=cursor)
    n.expect(
        (heap_fetches(again) or 0) > 0,
        "and each page an UPDATE touched (even one rolled back) lost its "
        "all-visible bit: the heap fetches are back until the next VACUUM",
    )
    n.say(
        "So catalog_stock_level has no covering index: checkout updates reserved\n"
        "on every sale, which would cost every such update its HOT path and keep\n"
        "the visibility map of the hottest pages always stale."
    )
    n.sql("DROP TABLE lab_stock_level", cursor=cursor, label="clean up")


def hot_updates(n: Narrator, cursor) -> tuple[int, int]:
    """Update the variants' stock in a transaction that is rolled back;
    return how many rows it updated, and how many of them HOT."""
    n.sql("BEGIN", cursor=cursor)
    # The session's counts not yet sent to the statistics system show too,
    # an earlier transaction's included: the difference is this UPDATE's.
    ((updated, hot),) = n.sql(
        HOT_SQL, cursor=cursor, label="the session's pending counts for the table"
    )
    n.sql(RESERVE_SQL, VARIANTS, cursor=cursor)
    ((updated_after, hot_after),) = n.sql(HOT_SQL, cursor=cursor)
    n.sql("ROLLBACK", cursor=cursor)
    updated, hot = updated_after - updated, hot_after - hot
    n.say(f"    the UPDATE: {updated} row(s), {hot} of them HOT")
    return updated, hot


def heap_fetches(plan: Plan) -> int | None:
    scans = plan.find("Index Only Scan")
    if not scans:
        return None
    return int(scans[0].details.get("Heap Fetches", "0"))


# --- BRIN --------------------------------------------------------------------

AUDIT_SQL = """
INSERT INTO lab_audit_log (occurred_at, table_name, row_pk, action, old_row, new_row)
SELECT timestamptz '2026-01-01 00:00+00' + n * interval '30 seconds',
       'orders_order', (n / 3)::text, 'UPDATE',
       jsonb_build_object('status', 'pending'), jsonb_build_object('status', 'paid')
FROM generate_series(1, %s) AS n
"""
# An auditor's question: every change made on one day.
AUDIT_DAY_SQL = """
SELECT count(*) AS changes, min(occurred_at) AS first, max(occurred_at) AS last
FROM lab_audit_log
WHERE occurred_at >= %s AND occurred_at < %s
"""
AUDIT_DAY = ("2026-02-10 00:00+00", "2026-02-11 00:00+00")
BRIN_OF_SQL = """
SELECT index.relname AS brin_index
FROM pg_index
JOIN pg_class AS index ON index.oid = pg_index.indexrelid
JOIN pg_am ON pg_am.oid = index.relam
WHERE pg_index.indrelid = %s::regclass AND pg_am.amname = 'brin'
"""


def brin(n: Narrator, cursor) -> None:
    n.step("BRIN: a summary per block range, on the audit log's timestamp")
    n.sql(
        "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
        ["shop_audit_log_occurred_at_brin"],
        cursor=cursor,
        label="the shop's own, shop/sql/tables/audit_log_v01.sql",
    )
    n.sql(
        "CREATE TEMP TABLE lab_audit_log (LIKE shop_audit_log INCLUDING ALL)",
        cursor=cursor,
        label="a copy of the log with its defaults, constraints and indexes",
    )
    n.sql(AUDIT_SQL, [AUDIT_ROWS], cursor=cursor, label="70 days of entries, in order")
    n.sql("VACUUM (ANALYZE) lab_audit_log", cursor=cursor)
    ((correlation,),) = n.sql(
        "SELECT correlation FROM pg_stats "
        "WHERE tablename = 'lab_audit_log' AND attname = 'occurred_at'",
        cursor=cursor,
        label="how closely the column follows the table's physical order",
    )
    n.expect(
        correlation > 0.99,
        "entries are appended in time order, so occurred_at follows the "
        "physical order: what BRIN relies on",
    )
    ((brin_name,),) = n.sql(
        BRIN_OF_SQL, ["lab_audit_log"], cursor=cursor, label="the copy's BRIN index"
    )
    plan = explain(n, AUDIT_DAY_SQL, AUDIT_DAY, cursor=cursor)
    n.expect(
        bool(plan.find("Bitmap Index Scan", index=brin_name)),
        "one day's entries are found through the BRIN index: it names the "
        "block ranges whose min..max overlaps the day",
    )
    (heap,) = plan.find("Bitmap Heap Scan")
    n.expect(
        "lossy" in heap.details.get("Heap Blocks", ""),
        "its bitmap is lossy, whole pages: each row on them is checked again "
        "(Recheck Cond, Rows Removed by Index Recheck)",
    )
    brin_pages = plan.top.blocks

    n.sql(
        "CREATE INDEX lab_audit_log_occurred_at_btree ON lab_audit_log (occurred_at)",
        cursor=cursor,
        label="a B-tree on the same column, to compare",
    )
    btree_plan = explain(n, AUDIT_DAY_SQL, AUDIT_DAY, cursor=cursor)
    n.sql(
        SIZES_SQL,
        [[brin_name, "lab_audit_log_occurred_at_btree", "lab_audit_log"]],
        cursor=cursor,
    )
    brin_bytes = relation_bytes(cursor, brin_name)
    btree_bytes = relation_bytes(cursor, "lab_audit_log_occurred_at_btree")
    n.expect(
        brin_bytes * 50 < btree_bytes,
        f"the BRIN index is {brin_bytes // 1024} kB, the B-tree "
        f"{btree_bytes // 1024} kB",
    )
    n.say(
        f"The B-tree reads fewer pages for the day ({btree_plan.top.blocks} against "
        f"{brin_pages}):\nit points at rows, BRIN at ranges of 128 pages. For a "
        "log that every audited\nwrite appends to and an auditor reads now and "
        "then, the index that costs\nnext to nothing to keep wins."
    )
    n.sql("DROP TABLE lab_audit_log", cursor=cursor, label="clean up")


# --- trigram ---------------------------------------------------------------

SKU_SQL = """
CREATE TEMP TABLE lab_variant AS
SELECT n AS id,
       (ARRAY['DL', 'FL', 'AC', 'BS'])[1 + mod(n, 4)] || lpad(n::text, 6, '0')
           || '-' || (ARRAY['BRS', 'OAK', 'WAL', 'BLK'])[1 + mod(n / 4, 4)] AS sku,
       (ARRAY['Walnut', 'Brass', 'Oak', 'Linen'])[1 + mod(n, 4)] || ' '
           || (ARRAY['desk lamp', 'floor lamp', 'armchair', 'bookshelf'])
              [1 + mod(n / 4, 4)] AS name
FROM generate_series(1, %s) AS n
"""
SKU_FRAGMENT_SQL = "SELECT id, sku FROM lab_variant WHERE sku LIKE %s"
MATCHES_SQL = """
SELECT to_tsvector('english', name) @@ catalog_search_prefix(%(fragment)s)
           AS tsquery_prefix,
       name ILIKE %(infix)s AS trigram_infix,
       round(similarity(name, %(typo)s)::numeric, 2) AS similarity_to_typo
FROM (VALUES (%(name)s)) AS product (name)
"""


def trigram(n: Narrator, cursor) -> None:
    n.step("Trigram (pg_trgm): substrings and near misses")
    ((available, installed),) = n.sql(
        "SELECT count(*) AS available, count(installed_version) AS installed "
        "FROM pg_available_extensions WHERE name = 'pg_trgm'",
        cursor=cursor,
    )
    if not available:
        n.say(
            "pg_trgm is not installed on this server (it ships with PostgreSQL's\n"
            "contrib: the postgresql-contrib package); this part is skipped."
        )
        return
    n.sql("BEGIN", cursor=cursor)
    try:
        if not installed:
            n.sql(
                "CREATE EXTENSION pg_trgm",
                cursor=cursor,
                label="a trusted extension: the database's owner may create it; "
                "rolled back below",
            )
        n.sql(SKU_SQL, [SKUS], cursor=cursor)
        n.sql(
            "CREATE INDEX lab_variant_sku_btree ON lab_variant (sku)",
            cursor=cursor,
            label="what catalog_variant_sku_uniq is: a B-tree",
        )
        n.sql("ANALYZE lab_variant", cursor=cursor)
        pattern = ["%1234-%"]
        without = explain(n, SKU_FRAGMENT_SQL, pattern, cursor=cursor)
        n.expect(
            bool(without.find("Seq Scan")),
            "a B-tree cannot find a fragment in the middle of a SKU: LIKE "
            "'%...%' reads every row",
        )
        n.sql(
            "CREATE INDEX lab_variant_sku_trgm ON lab_variant "
            "USING gin (sku gin_trgm_ops)",
            cursor=cursor,
        )
        with_trgm = explain(n, SKU_FRAGMENT_SQL, pattern, cursor=cursor)
        n.expect(
            bool(with_trgm.find("Bitmap Index Scan", index="lab_variant_sku_trgm")),
            "the trigram index finds it: every three-letter piece of the "
            "fragment is a key of the GIN index",
        )

        n.say("\nAgainst the shop's search, on one product name:")
        (row,) = n.sql(
            MATCHES_SQL,
            {
                "fragment": "alnut",
                "infix": "%alnut%",
                "typo": "wallnut desk lamp",
                "name": "Walnut desk lamp",
            },
            cursor=cursor,
        )
        n.expect(
            row[0] is False and row[1] is True and row[2] > 0.5,
            "a prefix tsquery finds words by their start only; trigrams find "
            "any substring, and a misspelling scores close",
        )
        n.sql(
            "CREATE INDEX lab_variant_name_trgm ON lab_variant "
            "USING gin (name gin_trgm_ops)",
            cursor=cursor,
        )
        n.sql(
            "CREATE INDEX lab_variant_name_fts ON lab_variant "
            "USING gin (to_tsvector('english', name))",
            cursor=cursor,
        )
        names = ["lab_variant_name_trgm", "lab_variant_name_fts"]
        n.sql(SIZES_SQL, [names], cursor=cursor)
        trgm_bytes = relation_bytes(cursor, "lab_variant_name_trgm")
        fts_bytes = relation_bytes(cursor, "lab_variant_name_fts")
        n.expect(
            trgm_bytes > fts_bytes,
            "over the same names the trigram index is the larger: a key per "
            "three letters, not per word",
        )
        n.say(
            "The shop's search stays a prefix tsquery (catalog.selectors.\n"
            "search_query): words are stemmed ('lamps' finds 'lamp'), name and\n"
            "description are weighted and ranked, 'oak' does not match 'cloak',\n"
            "and the index is smaller. Trigrams would earn their index for a query\n"
            "the shop does not have yet: staff finding a SKU by a fragment of it,\n"
            "or a did-you-mean."
        )
    finally:
        n.sql("ROLLBACK", cursor=cursor, label="no pg_trgm, no table: as before")
