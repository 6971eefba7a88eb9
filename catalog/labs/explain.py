"""Lab `explain` (06): the product list ordered by price, under EXPLAIN
(ANALYZE, BUFFERS), without its index and with it; the plan read node by
node; the same before and after as pg_stat_statements counts it.

Everything runs as shop_owner in one transaction that is rolled back: the
lab's 20,000 products, the statistics ANALYZE gathers on them, and the
DROP INDEX that makes the "before". The index comes back with ROLLBACK TO
SAVEPOINT, which also releases the exclusive lock the DROP took on
catalog_product (held for well under a second; lock_timeout makes the lab
fail fast rather than queue behind a long transaction of the shop's).
Rolled back, the rows still leave dead versions and index entries behind,
which VACUUM (autovacuum, soon after) clears.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlparse
from django.db import DatabaseError, connections, transaction

from catalog import selectors
from catalog.labs.plans import Plan, catalog_bulk, explain
from shop.lab import Narrator, lab, rolled_back

PRODUCTS = 20_000
PAGE = 21  # what the paginator asks for: a page of 20 and one more
INDEX = "catalog_product_price_idx"
RUNS = 20  # executions of the query per side, for pg_stat_statements

PROBE_SQL = "SELECT count(*) AS entries FROM pg_stat_statements"
STATEMENT_STATS_SQL = """
SELECT calls, round(total_exec_time::numeric, 2) AS total_exec_ms,
       shared_blks_hit + shared_blks_read AS blocks, rows
FROM pg_stat_statements
WHERE queryid = %s
  AND userid = current_user::regrole
  AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND toplevel
"""
STORED_TEXT_SQL = """
SELECT left(query, 40) || ' ... ' || right(query, 70) AS query
FROM pg_stat_statements
WHERE queryid = %s AND userid = current_user::regrole
  AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class Stats(NamedTuple):
    calls: int
    total_ms: float
    blocks: int

    def __sub__(self, other):
        return Stats(*(mine - theirs for mine, theirs in zip(self, other, strict=True)))


@lab(
    "explain",
    chapter="06",
    summary="EXPLAIN (ANALYZE, BUFFERS) of the product list without and with "
    "its index; pg_stat_statements before and after",
)
def explain_lab(n: Narrator) -> None:
    connection = connections["owner"]
    with rolled_back("owner"), connection.cursor() as cursor:
        n.step("Setup, as shop_owner, in a transaction that is rolled back")
        n.sql("SET LOCAL lock_timeout = '5s'", cursor=cursor)
        catalog_bulk(n, "06", products=PRODUCTS, cursor=cursor)
        n.sql(
            "ANALYZE catalog_category, catalog_product, catalog_product_variant",
            cursor=cursor,
            label="fresh statistics for the planner, as autovacuum would gather "
            "them after a load (rolled back with the rest)",
        )

        n.step("The query: the first page of GET /api/v1/products/?ordering=price")
        queryset = selectors.product_list(ordering="price")[:PAGE]
        sql, params = queryset.query.sql_with_params()
        n.show_sql(
            sqlparse.format(sql, reindent=True),
            params,
            label=f"catalog.selectors.product_list(ordering='price')[:{PAGE}]",
        )
        query_id = statement_query_id(n, cursor, sql, params)

        n.step(f"Before: without {INDEX}")
        n.sql("SAVEPOINT without_index", cursor=cursor)
        n.sql(f"DROP INDEX {INDEX}", cursor=cursor)
        before = explain(
            n, sql, params, what="the product list's query, above", cursor=cursor
        )
        read_plan_without_index(n, before)
        stats_before = measure(n, cursor, sql, params, query_id, first=True)
        n.sql(
            "ROLLBACK TO SAVEPOINT without_index",
            cursor=cursor,
            label="the index is back: DDL is transactional (chapter 04)",
        )

        n.step(f"After: with {INDEX}")
        after = explain(
            n, sql, params, what="the product list's query, above", cursor=cursor
        )
        read_plan_with_index(n, after)
        stats_after = measure(n, cursor, sql, params, query_id, first=False)

        n.step("Before and after")
        compare(n, before, after, stats_before, stats_after)
        if query_id is not None:
            n.sql(
                STORED_TEXT_SQL,
                [query_id],
                cursor=cursor,
                label="what pg_stat_statements keeps: the text with its "
                "constants replaced",
            )


def statement_query_id(n: Narrator, cursor, sql, params) -> int | None:
    """The query's id in pg_stat_statements, or None (said why) without it."""
    rows = n.sql(
        "SELECT count(*) AS installed FROM pg_extension "
        "WHERE extname = 'pg_stat_statements'",
        cursor=cursor,
        label="is pg_stat_statements here?",
    )
    if rows[0][0] == 0:
        unavailable(n, "the extension is not created in this database")
        return None
    try:
        # A savepoint: the error below must not abort the lab's transaction.
        with transaction.atomic(using="owner"):
            n.sql(PROBE_SQL, cursor=cursor)
    except DatabaseError as exc:  # 55000 when the library is not preloaded
        first_line = str(exc.__cause__ or exc).splitlines()[0]
        n.say(f"    -> ERROR: {first_line}")
        unavailable(n, "the server did not load the library at start")
        return None
    n.show_sql(
        "EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) <the query>",
        label="the id pg_stat_statements files the query under",
    )
    cursor.execute("EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) " + sql, params)
    (document,) = cursor.fetchone()
    query_id = document[0].get("Query Identifier")
    if query_id is None:
        unavailable(n, "compute_query_id is off, so statements get no id")
        return None
    n.say(f"    -> Query Identifier: {query_id}")
    return query_id


def unavailable(n: Narrator, why: str) -> None:
    n.say(f"pg_stat_statements is unavailable: {why}.")
    n.say(
        "The plans below do not need it; its counts are skipped. To have them:\n"
        "scripts/services.sh starts the primary with shared_preload_libraries =\n"
        "'pg_stat_statements' (a primary made before that needs one restart),\n"
        "and scripts/sql/database.sql runs CREATE EXTENSION pg_stat_statements\n"
        "as the superuser."
    )


def statement_stats(n: Narrator, cursor, query_id: int, *, shown: bool) -> Stats:
    if shown:
        rows = n.sql(STATEMENT_STATS_SQL, [query_id], cursor=cursor)
    else:
        n.say("    -- pg_stat_statements again, for the same query id")
        cursor.execute(STATEMENT_STATS_SQL, [query_id])
        rows = cursor.fetchall()
        n.table([column.name for column in cursor.description], rows)
    if not rows:  # not run yet by this role in this database
        return Stats(0, 0.0, 0)
    calls, total_ms, blocks, _ = rows[0]
    return Stats(calls, float(total_ms), blocks)


def measure(n: Narrator, cursor, sql, params, query_id, *, first: bool) -> Stats | None:
    """Run the query RUNS times; what pg_stat_statements counted for them.

    Its counters only grow (resetting them takes a superuser), so the cost
    of these runs is the difference between a reading before and after.
    """
    if query_id is None:
        return None
    before = statement_stats(n, cursor, query_id, shown=first)
    n.say(f"    -- the product list's query, run {RUNS} times")
    for _ in range(RUNS):
        cursor.execute(sql, params)
        cursor.fetchall()
    counted = statement_stats(n, cursor, query_id, shown=False) - before
    n.expect(
        counted.calls == RUNS,
        f"pg_stat_statements counted the {RUNS} runs under one entry",
    )
    return counted


def read_plan_without_index(n: Narrator, plan: Plan) -> None:
    (scan,) = plan.find("Seq Scan", relation="catalog_product")
    (sort,) = plan.find("Sort")
    n.say(
        "\nRead it from the innermost node outwards. Each node gives the\n"
        "planner's guess, (cost=startup..total rows=R), then what happened,\n"
        "(actual time=first..last ms rows=R loops=L), per loop:\n"
        f"  - Seq Scan on catalog_product read every listed product: {scan.rows:,}\n"
        f"    rows (the planner guessed {scan.estimate:,}); its Filter dropped the\n"
        "    unlisted ones (Rows Removed by Filter).\n"
        f"  - Sort kept the {PAGE} cheapest with '{sort.details['Sort Method']}':\n"
        "    no full sort, but every row had to be read before the first one\n"
        "    could be returned (the startup cost is most of the total).\n"
        "  - Result computed the select list's subqueries (SubPlan 1, the\n"
        f"    category's slug; SubPlan 2, the stock) for those {PAGE} rows only.\n"
        f"  - Limit stopped after {PAGE}. Buffers: shared hit=pages found in\n"
        "    PostgreSQL's cache, read=pages asked of the operating system;\n"
        f"    the top node's count is the whole query's: {plan.top.blocks:,} pages."
    )
    n.expect(
        scan.rows >= PRODUCTS * 8 // 10,
        f"without the index the whole table is read: {scan.rows:,} rows to "
        f"return {PAGE}",
    )
    n.expect(
        "top-N" in sort.details["Sort Method"],
        "and sorted with a top-N heapsort, which keeps only the page in memory",
    )


def read_plan_with_index(n: Narrator, plan: Plan) -> None:
    scans = plan.find("Index Scan", index=INDEX)
    n.expect(
        len(scans) == 1 and not plan.find("Sort"),
        f"the rows come out of {INDEX} already in (min_price, id) order: no Sort node",
    )
    n.expect(
        scans[0].rows == PAGE,
        f"the index scan stopped after {PAGE} rows: Limit asked for no more",
    )
    n.say(
        f"The Index Scan's total cost is large (reading all {scans[0].estimate:,}\n"
        "listed rows this way would be slow), but its startup cost is near zero,\n"
        "and Limit needs only the first rows: the planner prices a LIMIT as that\n"
        "fraction of its child's cost."
    )


def compare(n: Narrator, before: Plan, after: Plan, stats_before, stats_after):
    rows = [
        (
            "EXPLAIN ANALYZE",
            f"{before.execution_ms:.2f} ms",
            f"{after.execution_ms:.2f} ms",
            f"{before.top.blocks:,}",
            f"{after.top.blocks:,}",
        )
    ]
    if stats_before is not None:
        rows.append(
            (
                f"pg_stat_statements, mean of {RUNS}",
                f"{stats_before.total_ms / RUNS:.2f} ms",
                f"{stats_after.total_ms / RUNS:.2f} ms",
                f"{stats_before.blocks // RUNS:,}",
                f"{stats_after.blocks // RUNS:,}",
            )
        )
    n.table(
        ["measured by", "time before", "time after", "pages before", "pages after"],
        rows,
    )
    n.expect(
        after.top.blocks * 3 < before.top.blocks,
        "with the index the query touches under a third of the pages",
    )
    if stats_before is None:
        slower = before.execution_ms / after.execution_ms
    else:
        slower = stats_before.total_ms / stats_after.total_ms
        n.expect(
            stats_after.blocks * 3 < stats_before.blocks,
            "and pg_stat_statements, which saw every execution, agrees",
        )
    n.expect(
        slower > 5,
        f"without the index the query took {slower:.0f} times as long",
    )
