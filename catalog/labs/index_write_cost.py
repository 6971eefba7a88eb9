"""Lab `index-write-cost` (14): what each index costs every INSERT, measured.

The same 10,000 products are inserted into a scratch table shaped like
catalog_product (its columns and generated search document, no triggers)
carrying none, then more and more of catalog_product's own indexes, their
definitions read from the catalog. EXPLAIN (ANALYZE, WAL) gives each
INSERT's time and the WAL it wrote, which is what a replica must replay
and a backup must keep.

All of it as shop_owner in one transaction that is rolled back; each
measurement in a savepoint of its own, on a fresh table.
"""

from __future__ import annotations

import re
import statistics

from django.db import connections

from catalog.labs.plans import Plan
from shop.lab import LabFailed, Narrator, lab, rolled_back

ROWS = 10_000
REPEAT = 5  # measurements per step; the median is kept
STEPS = (0, 1, 3, 6)  # and then all of catalog_product's indexes

# The primary key first, then the unique index, the other B-trees, GIN last:
# the order in which a table usually gains them.
INDEXES_SQL = """
SELECT index.relname AS index, pg_get_indexdef(pg_index.indexrelid) AS definition
FROM pg_index
JOIN pg_class AS index ON index.oid = pg_index.indexrelid
JOIN pg_am ON pg_am.oid = index.relam
WHERE pg_index.indrelid = 'catalog_product'::regclass
ORDER BY NOT pg_index.indisprimary, NOT pg_index.indisunique,
         pg_am.amname = 'gin', index.relname
"""
TABLE_SQL = """
CREATE TABLE lab_index_cost
    (LIKE catalog_product INCLUDING DEFAULTS INCLUDING GENERATED)
"""
INSERT_SQL = """
INSERT INTO lab_index_cost
    (id, category_id, name, slug, description, is_active, created_at, updated_at,
     min_price)
SELECT n, 1 + mod(n, 4), title || ' ' || n, 'lab-cost-p' || n,
       'A ' || lower(title) || ' for the lab.', mod(n, 10) <> 0,
       now() - n * interval '1 minute', now(), (500 + mod(n * 7919, 49500)) / 100.0
FROM generate_series(1, %s) AS n,
LATERAL (
    SELECT (ARRAY['Walnut', 'Brass', 'Oak', 'Linen', 'Steel', 'Marble', 'Rattan'])
               [1 + mod(n, 7)]
           || ' ' ||
           (ARRAY['desk lamp', 'floor lamp', 'armchair', 'bookshelf', 'side table',
                  'rug', 'mirror', 'pendant light'])[1 + mod(n / 7, 8)] AS title
) AS words
"""
INDEX_BYTES_SQL = """
SELECT COALESCE(sum(pg_relation_size(indexrelid)), 0)
FROM pg_index WHERE indrelid = 'lab_index_cost'::regclass
"""
# "CREATE UNIQUE INDEX catalog_product_pkey ON public.catalog_product USING
# btree (id)": the same index, renamed, on the scratch table.
DEFINITION = re.compile(
    r"^CREATE (?P<unique>UNIQUE )?INDEX catalog_product(?P<suffix>\w*) "
    r"ON public\.catalog_product (?P<rest>.*)$"
)


@lab(
    "index-write-cost",
    chapter="14",
    summary="inserts into a copy of catalog_product with 0 to 8 of its indexes: "
    "time and WAL, measured",
)
def index_write_cost(n: Narrator) -> None:
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.step("catalog_product's indexes, as the catalog defines them")
        n.sql("SET LOCAL lock_timeout = '5s'", cursor=cursor)
        indexes = n.sql(INDEXES_SQL, cursor=cursor)
        ladder = [scratch_definition(definition) for _, definition in indexes]
        steps = sorted({step for step in STEPS if step < len(ladder)} | {len(ladder)})

        n.step("One measurement: all of them, in a savepoint of its own")
        n.sql("SAVEPOINT measurement", cursor=cursor)
        n.sql(TABLE_SQL, cursor=cursor, label="a fresh scratch table")
        for definition in ladder:
            n.sql(definition, cursor=cursor)
        insert(n, cursor, shown=True)
        n.sql("ROLLBACK TO SAVEPOINT measurement", cursor=cursor)

        n.step(f"{ROWS:,} rows into 0 to {len(ladder)} indexes, {REPEAT} times each")
        n.say("    (the first k indexes above each time; the median is kept)")
        results = [measure(n, cursor, ladder[:step]) for step in steps]
        report(n, steps, results)


def scratch_definition(definition: str) -> str:
    found = DEFINITION.match(definition)
    if found is None:
        raise LabFailed(f"an index definition this lab cannot move: {definition}")
    return (
        f"CREATE {found['unique'] or ''}INDEX lab_index_cost{found['suffix']} "
        f"ON lab_index_cost {found['rest']}"
    )


def insert(n: Narrator, cursor, *, shown: bool) -> Plan:
    statement = "EXPLAIN (ANALYZE, WAL, TIMING OFF) " + INSERT_SQL
    if shown:
        n.show_sql(statement, [ROWS])
    cursor.execute(statement, [ROWS])
    plan = Plan.parse("\n".join(row[0] for row in cursor.fetchall()))
    if shown:
        for line in plan.text.splitlines():
            n.say(f"       {line}")
    return plan


def measure(n: Narrator, cursor, definitions) -> dict:
    times, wal, sizes = [], [], []
    for _ in range(REPEAT):
        cursor.execute("SAVEPOINT measurement")
        cursor.execute(TABLE_SQL)
        for definition in definitions:
            cursor.execute(definition)
        plan = insert(n, cursor, shown=False)
        cursor.execute(INDEX_BYTES_SQL)
        sizes.append(cursor.fetchone()[0])
        cursor.execute("ROLLBACK TO SAVEPOINT measurement")
        times.append(plan.execution_ms)
        wal.append(plan.top.wal_bytes)
    result = {
        "ms": statistics.median(times),
        "wal": statistics.median(wal),
        "index_bytes": statistics.median(sizes),
    }
    n.say(
        f"    {len(definitions)} index(es): {result['ms']:8.1f} ms, "
        f"{result['wal'] / 1024 / 1024:6.2f} MB of WAL "
        f"(runs: {', '.join(f'{t:.0f}' for t in times)} ms)"
    )
    return result


def report(n: Narrator, steps, results) -> None:
    base = results[0]
    rows = [
        (
            step,
            f"{result['ms']:.1f}",
            f"{result['ms'] * 1000 / ROWS:.1f}",
            f"{result['ms'] / base['ms']:.1f}x",
            f"{result['wal'] / ROWS:,.0f}",
            f"{result['index_bytes'] / 1024 / 1024:.1f}",
        )
        for step, result in zip(steps, results, strict=True)
    ]
    n.table(
        ["indexes", "ms", "us per row", "time", "WAL bytes per row", "index MB"],
        rows,
    )
    wal = [result["wal"] for result in results]
    n.expect(
        all(later > earlier for earlier, later in zip(wal, wal[1:], strict=False)),
        "every index added writes more WAL per row: each row becomes one more "
        "entry in each index, logged for crash recovery and the replica",
    )
    n.expect(
        wal[-1] > 3 * wal[0],
        f"with all {steps[-1]} indexes a row costs {wal[-1] / wal[0]:.1f} times "
        "the WAL it costs in the bare table",
    )
    # Time is reported, not claimed: it moves with whatever else shares the
    # machine, while the WAL above is the same on every run. The timed
    # comparison belongs to a benchmark (docs/benchmarks.md), not a check.
    n.say(
        f"Time: with all {steps[-1]} indexes an insert took "
        f"{results[-1]['ms'] / base['ms']:.1f} times as long as into the bare "
        "table on this run."
    )
