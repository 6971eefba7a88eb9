"""Lab `search-postings` (14): an index of our own, a rank per word, and what
keeping it costs.

All of it as shop_owner, in one transaction that is rolled back:

1. 20,000 products in one statement (catalog/sql/labs/catalog_bulk.sql),
   whose INSERT trigger writes every word of every product into
   catalog_search_posting; then one lamp in three gets "lamp" twice more in
   its description, and "design", an UPDATE the other trigger follows.
   ANALYZE.
2. One product's postings, beside ts_rank_cd computed from its document.
3. The first page of GET /api/v1/products/?search=lamp, the API's own query
   (catalog.selectors.product_list, its words looked up in this
   transaction), explained: the posting index read backwards, one page of
   rows. Then the same page ranked through the GIN index
   (catalog/sql/labs/ranked_by_gin.sql), explained: every match fetched and
   ranked. The two pages are compared, id by id and rank by rank. Then a
   search as typed, "lamp des": its matches ranked with the words "des"
   stands for (design, desk) and with the prefix itself, which must give
   every match the same rank; both rankings timed over the matches'
   documents copied to a temporary table, rounds interleaved.
4. The writers' side: products inserted with the postings' trigger and
   without it (DISABLE TRIGGER, undone by the rollback), rounds interleaved,
   with the rows each wrote (pg_stat_xact_user_tables) and the bytes the
   postings take; then a rename, and what its trigger rewrote.
"""

from __future__ import annotations

import statistics
import time

from django.db import connections

from catalog import selectors
from catalog.labs.plans import catalog_bulk, explain
from catalog.labs.rows import catalog_names
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

PRODUCTS = 20_000
WORD = "lamp"
PAGE = 21  # a page of 20 and the row that says there is another
INSERTED = 500  # products per timed INSERT
ROUNDS = 5  # timed INSERTs per case, interleaved; the median is kept
TRIGGER = "catalog_product_postings_insert"
RANKED_BY_GIN_SQL_FILE = "catalog/sql/labs/ranked_by_gin.sql"
POSTINGS_SQL_FILE = "catalog/sql/labs/product_postings.sql"
DRIFT_SQL_FILE = "catalog/sql/queries/search_posting_drift_v01.sql"

MORE_LAMPS_SQL = """
UPDATE catalog_product
SET description = description || ' Lamp by lamp, a design classic.'
WHERE slug LIKE %(slug)s || '-p%%' AND name LIKE '%%lamp%%' AND mod(id, 3) = 0
"""
INSERT_SQL = """
INSERT INTO catalog_product
    (category_id, name, slug, description, is_active, created_at, updated_at)
SELECT %(category)s, 'Brass desk lamp ' || n, %(slug)s || '-w' || %(batch)s || '-' || n,
       'A brass desk lamp with a linen shade, for the lab.', true, now(), now()
FROM generate_series(1, %(rows)s) AS n
"""
RENAME_SQL = """
UPDATE catalog_product
SET name = replace(name, 'Brass', 'Copper')
WHERE slug LIKE %(slug)s || '-w0-%%'
"""
POSTING_WRITES_SQL = """
SELECT n_tup_ins AS inserted, n_tup_upd AS updated, n_tup_del AS deleted
FROM pg_stat_xact_user_tables
WHERE relname = 'catalog_search_posting'
"""
# A search as typed: the words the prefix stands for match, the prefix ranks
# (catalog.selectors.SearchPlan). {match} and {rank} are the two compiled
# tsqueries; their values travel as parameters.
TYPED = "lamp des"
TYPED_RANKS_SQL = """
SELECT count(*) AS matches,
       count(*) FILTER (
           WHERE ts_rank_cd(search_document, {match})
                 <> ts_rank_cd(search_document, {rank})
       ) AS ranked_differently
FROM catalog_product
WHERE search_document @@ {match}
"""
# The matches' documents, copied once, so that what is timed is the ranking
# alone: matching and fetching them cost the same either way. A temporary
# table of the lab's transaction, gone with its rollback.
TYPED_DOCUMENTS_SQL = """
CREATE TEMPORARY TABLE lab_typed_documents ON COMMIT DROP AS
SELECT search_document FROM catalog_product WHERE search_document @@ {match}
"""
TYPED_RANKING_SQL = """
SELECT sum(ts_rank_cd(search_document, {ranked})) FROM lab_typed_documents
"""
POSTING_BYTES_SQL = """
SELECT pg_relation_size('catalog_search_posting')
       + pg_indexes_size('catalog_search_posting')
"""


@lab(
    "search-postings",
    chapter="14",
    summary="a rank per word, kept by triggers: a one-word search reads a page "
    "of the posting index instead of ranking every match; what it costs a write",
)
def search_postings_lab(n: Narrator) -> None:
    names = catalog_names("14s")
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.step("Setup, as shop_owner, in a transaction that is rolled back")
        n.sql("SET LOCAL lock_timeout = '5s'", cursor=cursor)
        bytes_before = _posting_bytes(cursor)
        catalog_bulk(n, "14s", products=PRODUCTS, cursor=cursor)
        grown = _posting_bytes(cursor) - bytes_before
        n.sql(
            MORE_LAMPS_SQL,
            {"slug": names["slug"]},
            cursor=cursor,
            label="one lamp in three says 'lamp' twice more (its rank for it rises), "
            "and 'design'",
        )
        n.sql(
            "ANALYZE catalog_product, catalog_product_variant, catalog_search_posting",
            cursor=cursor,
            label="fresh statistics (rolled back with the rest)",
        )

        n.step("What the trigger wrote for one product")
        product = f"{names['slug']}-p3"
        rows = n.sql(read_sql(POSTINGS_SQL_FILE), [product], cursor=cursor)
        n.expect(
            bool(rows) and all(row[1] is not None and row[1] == row[2] for row in rows),
            "a posting per word of the document, each with the rank ts_rank_cd "
            "gives the product for that word alone",
        )
        (writes,) = n.sql(POSTING_WRITES_SQL, cursor=cursor)
        n.say(
            f"    {PRODUCTS:,} products wrote {writes[0]:,} postings "
            f"({writes[0] / PRODUCTS:.1f} a product), {grown / PRODUCTS:.0f} bytes a "
            "product with the two indexes"
        )

        n.step(f"The first page of ?search={WORD}, as the API reads it")
        queryset = selectors.product_list(search=WORD, lexemes_from="owner")
        sql, params = queryset.values_list("id", "rank")[:PAGE].query.sql_with_params()
        n.show_sql(sql, params, label="catalog.selectors.product_list(search='lamp')")
        by_posting = explain(n, sql, params, cursor=cursor, what="the page, above")
        scans = by_posting.find(index="catalog_posting_rank_idx")
        n.expect(
            len(scans) == 1 and scans[0].rows is not None and scans[0].rows < 2 * PAGE,
            "the posting index, read backwards from the best rank, stops after a "
            "page: the matches beyond it are never read",
        )
        cursor.execute(sql, params)
        page = cursor.fetchall()

        n.step("The same page ranked through the GIN index, as before")
        gin_sql = read_sql(RANKED_BY_GIN_SQL_FILE)
        gin_params = {"word": WORD, "page": PAGE}
        # On a database where most products say "lamp" (the lab's own beside a
        # seeded shop's), reading the whole table is cheaper, and the planner
        # rightly scans it: every row is then fetched and ranked all the same.
        n.sql(
            "SET LOCAL enable_seqscan = off",
            cursor=cursor,
            label="the GIN path, whatever share of this database says 'lamp'",
        )
        by_gin = explain(n, gin_sql, gin_params, cursor=cursor)
        n.sql("SET LOCAL enable_seqscan = DEFAULT", cursor=cursor)
        (fetched,) = by_gin.find("Bitmap Heap Scan")
        matches = fetched.rows
        n.expect(
            bool(by_gin.find("Bitmap Index Scan", index="catalog_product_search_gin"))
            and matches > 10 * PAGE,
            f"the GIN index finds every match ({matches:,}), and each is fetched "
            "and ranked before the best page is known",
        )
        cursor.execute(gin_sql, gin_params)
        n.expect(
            cursor.fetchall() == page,
            "the same products in the same order with the same ranks: the posting "
            "holds the value ts_rank_cd computes",
        )
        n.say(
            f"    execution: {by_posting.execution_ms:.2f} ms from the postings, "
            f"{by_gin.execution_ms:.2f} ms through the GIN index"
        )

        _typed_search(n, cursor)

        n.step(
            f"What the postings cost a write: {ROUNDS} rounds of {INSERTED} products "
            "inserted with the trigger and without it"
        )
        category = _a_lab_category(cursor, names)
        # Django declares every foreign key DEFERRABLE INITIALLY DEFERRED, and
        # ALTER TABLE refuses a table with checks still pending: run them now.
        n.sql("SET CONSTRAINTS ALL IMMEDIATE", cursor=cursor)
        n.show_sql(INSERT_SQL, label="each batch")
        times = {"with": [], "without": []}
        rows_written = {}
        for batch in range(ROUNDS * 2):
            case = "with" if batch % 2 == 0 else "without"
            if case == "without":
                cursor.execute(f"ALTER TABLE catalog_product DISABLE TRIGGER {TRIGGER}")
            before = _posting_writes(cursor)
            started = time.perf_counter()
            cursor.execute(
                INSERT_SQL,
                {
                    "category": category,
                    "slug": names["slug"],
                    "batch": batch,
                    "rows": INSERTED,
                },
            )
            times[case].append(time.perf_counter() - started)
            rows_written[case] = _posting_writes(cursor)[0] - before[0]
            if case == "without":
                cursor.execute(f"ALTER TABLE catalog_product ENABLE TRIGGER {TRIGGER}")
        each = {
            case: statistics.median(t) / INSERTED * 1e6 for case, t in times.items()
        }
        n.table(
            ["batch", "µs a product", "postings written"],
            [
                (case, f"{each[case]:.0f}", rows_written[case])
                for case in ("without", "with")
            ],
        )
        n.say(
            f"    with the trigger: {each['with'] / each['without']:.1f} times the "
            "INSERT without it (times vary with the machine; the counts do not)"
        )
        n.expect(
            rows_written["without"] == 0 and rows_written["with"] >= 5 * INSERTED,
            "without the trigger no posting is written; with it, one per word",
        )

        n.step("A rename rewrites only the words that changed")
        before = _posting_writes(cursor)
        n.sql(RENAME_SQL, {"slug": names["slug"]}, cursor=cursor)
        inserted, updated, deleted = (
            after - was
            for after, was in zip(_posting_writes(cursor), before, strict=True)
        )
        n.say(
            f"    postings inserted {inserted}, rewritten {updated}, deleted {deleted}"
        )
        n.expect(
            inserted == INSERTED and updated == INSERTED and deleted == 0,
            f"each of the {INSERTED} renamed products gained 'copper'; 'brass', "
            "still in its description, ranks lower now (weight B, not A) and was "
            "rewritten; every other word kept its rank and was left alone",
        )
        drift = n.sql(
            read_sql(DRIFT_SQL_FILE), cursor=cursor, label=DRIFT_SQL_FILE, limit=3
        )
        n.expect(
            len({row[0] for row in drift}) == ROUNDS * INSERTED
            and all(row[2] is None for row in drift),
            f"the drift query lists the {ROUNDS * INSERTED:,} products inserted "
            "without the trigger, each word missing, and nothing else: the renamed "
            "ones are right, and a copy is wrong the moment nothing keeps it",
        )


def _typed_search(n: Narrator, cursor) -> None:
    """A search as typed is matched by the prefix's words and ranked by the prefix."""
    n.step(
        f"?search={TYPED.replace(' ', '+')}: the words of the catalogue that start "
        "with 'des' match, the prefix ranks"
    )
    plan = selectors.search_plan(TYPED, ranked=True, using="owner")
    n.expect(
        plan.rank_query is not None,
        "a few words of the catalogue start with 'des': the search is matched by "
        "their OR and ranked by the prefix (else both would be one query)",
    )
    (match, match_params), (rank, rank_params) = (
        selectors.expression_sql(query, using="owner")
        for query in (plan.query, plan.ranked_by)
    )
    sql = TYPED_RANKS_SQL.format(match=match, rank=rank)
    params = [*match_params, *rank_params, *match_params]
    ((matches, differ),) = n.sql(sql, params, cursor=cursor)
    n.expect(
        matches > PAGE and differ == 0,
        f"every one of the {matches:,} matches has the same rank either way: the "
        "words are all the catalogue's words that start with the prefix",
    )
    n.sql(TYPED_DOCUMENTS_SQL.format(match=match), match_params, cursor=cursor)
    n.show_sql(TYPED_RANKING_SQL, label=f"ranked with each, {ROUNDS * 4} rounds each")
    times = {"the words (OR)": [], "the prefix": []}
    for _ in range(ROUNDS * 4):
        for label, (ranked, ranked_params) in (
            ("the words (OR)", (match, match_params)),
            ("the prefix", (rank, rank_params)),
        ):
            started = time.perf_counter()
            cursor.execute(TYPED_RANKING_SQL.format(ranked=ranked), ranked_params)
            cursor.fetchall()
            times[label].append(time.perf_counter() - started)
    n.table(
        ["ranked with", "median ms"],
        [(label, f"{statistics.median(t) * 1000:.2f}") for label, t in times.items()],
    )
    n.say(
        "    the statement the API sends ranks with the prefix "
        "(catalog.selectors.SearchPlan); times vary with the machine and are "
        "not checked"
    )


def _posting_writes(cursor) -> tuple[int, int, int]:
    cursor.execute(POSTING_WRITES_SQL)
    return cursor.fetchone()


def _posting_bytes(cursor) -> int:
    cursor.execute(POSTING_BYTES_SQL)
    return cursor.fetchone()[0]


def _a_lab_category(cursor, names) -> int:
    cursor.execute(
        "SELECT id FROM catalog_category WHERE slug LIKE %s ORDER BY id LIMIT 1",
        [names["slug"] + "-%"],
    )
    return cursor.fetchone()[0]
