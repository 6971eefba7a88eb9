"""Lab `min-price` (18): the denormalized lowest price, kept by triggers, and
what keeping it costs each variant write.

Three parts, each leaving nothing behind:

1. On `default` (shop_app), in a transaction rolled back: every kind of
   variant write moves catalog_product.min_price, and a direct write of the
   column is corrected.
2. On `owner` (shop_owner), in a transaction rolled back: the same price
   changes timed with the trigger and without it (ALTER TABLE ... DISABLE
   TRIGGER, which only the owner may run and the rollback undoes), and the
   rows each one writes counted from pg_stat_xact_user_tables. The ALTER
   holds a SHARE ROW EXCLUSIVE lock on the variants until the rollback:
   other sessions may read them, and their writes wait for the lab.
3. On two sessions of the lab's own (shop_app): two price changes of two
   different variants of one product queue on the product's row. A second
   session sees only committed rows, so this part commits an inactive
   product of its own and deletes it in `finally`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections

from catalog.labs.rows import catalog_names
from shop.lab import Narrator, connect, lab, rolled_back
from shop.sql_files import read_sql

ROWS_SQL_FILE = "catalog/sql/labs/min_price_rows.sql"
DRIFT_SQL_FILE = "catalog/sql/queries/product_min_price_drift_v01.sql"
TRIGGER = "catalog_variant_min_price_update"
CHEAP = Decimal("20.00")
DEAR = Decimal("30.00")
PRODUCTS = 100  # price changes per batch
ROUNDS = 5  # batches per case, interleaved; the median is kept
# The new prices the batches set: below CHEAP, so a new minimum; above DEAR,
# so the minimum stays.
NEW_CHEAP = Decimal("10.00")
NEW_DEAR = Decimal("31.00")


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    variants: str  # "cheap": the new price is the minimum; "dear": it is not
    bulk: bool  # one statement for every variant, or one each
    trigger: bool
    baseline: str  # the case without the trigger to compare with


CASES = (
    Case(
        name="each, moves",
        what="a statement per variant, the cheap one: a new minimum",
        variants="cheap",
        bulk=False,
        trigger=True,
        baseline="each, no trigger",
    ),
    Case(
        name="each, stays",
        what="a statement per variant, the dear one: the minimum stays",
        variants="dear",
        bulk=False,
        trigger=True,
        baseline="each, no trigger",
    ),
    Case(
        name="each, no trigger",
        what="as 'each, moves', with the trigger disabled",
        variants="cheap",
        bulk=False,
        trigger=False,
        baseline="each, no trigger",
    ),
    Case(
        name="one, moves",
        what="one statement for every cheap variant",
        variants="cheap",
        bulk=True,
        trigger=True,
        baseline="one, no trigger",
    ),
    Case(
        name="one, no trigger",
        what="as 'one, moves', with the trigger disabled",
        variants="cheap",
        bulk=True,
        trigger=False,
        baseline="one, no trigger",
    ),
)

MIN_PRICE_SQL = "SELECT min_price FROM catalog_product WHERE id = %s"
PRICE_SQL = "UPDATE catalog_product_variant SET price = %s WHERE id = %s"
BULK_PRICE_SQL = "UPDATE catalog_product_variant SET price = %s WHERE id = ANY (%s)"
ROW_WRITES_SQL = """
SELECT relname AS table_name, n_tup_upd AS updated, n_tup_hot_upd AS hot
FROM pg_stat_xact_user_tables
WHERE relname IN ('catalog_product', 'catalog_product_variant')
ORDER BY relname
"""
PRODUCT_INDEXES_SQL = """
SELECT count(*) AS indexes FROM pg_index
WHERE indrelid = 'catalog_product'::regclass
"""
DELETE_ROWS_SQL = """
WITH variants AS (
    DELETE FROM catalog_product_variant
    WHERE product_id IN (SELECT id FROM catalog_product WHERE slug LIKE %(like)s)
), products AS (
    DELETE FROM catalog_product WHERE slug LIKE %(like)s
)
DELETE FROM catalog_category WHERE slug = %(slug)s
"""


def lab_rows(
    n: Narrator, tag: str, *, products: int, is_active=True, shown=True, cursor=None
) -> list:
    """The lab's products: (product id, cheap variant id, dear variant id) each.

    The statement is shown in full once; later calls name its file and
    their parameters.
    """
    names = catalog_names(tag)
    params = {
        "name": names["name"],
        "slug": names["slug"],
        "products": products,
        "is_active": is_active,
        "cheap": CHEAP,
        "dear": DEAR,
    }
    if shown:
        return n.sql(read_sql(ROWS_SQL_FILE), params, cursor=cursor, limit=3)
    n.say(
        f"    {ROWS_SQL_FILE} again: {products} product(s) named {names['name']!r}, "
        f"is_active {is_active}"
    )
    # Unshown, always on a cursor of the caller's (its batch transaction, or
    # the second session's committed rows).
    cursor.execute(read_sql(ROWS_SQL_FILE), params)
    return cursor.fetchall()


@lab(
    "min-price",
    chapter="18",
    summary="min_price follows every variant write; what the trigger costs each "
    "price change, and the product row it locks",
)
def min_price_lab(n: Narrator) -> None:
    follows_every_write(n)
    write_cost(n)
    product_row_lock(n)


def follows_every_write(n: Narrator) -> None:
    n.step("min_price follows every variant write (as shop_app, rolled back)")
    with rolled_back("default"):
        ((product, cheap, dear),) = lab_rows(n, "min-price", products=1)

        def now(label: str, expected) -> None:
            (row,) = n.sql(MIN_PRICE_SQL, [product], label=label)
            shown = "NULL" if expected is None else expected
            n.expect(row[0] == expected, f"min_price is {shown}")

        now("after the INSERT of both variants", CHEAP)
        n.sql(PRICE_SQL, [Decimal("35.00"), cheap])
        now("the cheap one is now dearer than the other", DEAR)
        n.sql(
            "UPDATE catalog_product_variant SET is_active = false WHERE id = %s",
            [dear],
        )
        now("the 30.00 one switched off", Decimal("35.00"))
        n.sql("DELETE FROM catalog_product_variant WHERE id = %s", [cheap])
        now("no active variant left: off the list", None)
        n.sql(
            "UPDATE catalog_product_variant SET is_active = true WHERE id = %s",
            [dear],
        )
        now("switched on again", DEAR)
        n.sql("UPDATE catalog_product SET min_price = 1 WHERE id = %s", [product])
        now("a direct write is replaced by what the variants say", DEAR)
        drift = n.sql(read_sql(DRIFT_SQL_FILE), label=DRIFT_SQL_FILE)
        n.expect(drift == [], "the drift query finds nothing to report")


def write_cost(n: Narrator) -> None:
    batches = ROUNDS * len(CASES)
    n.step(
        f"What the trigger costs: {batches} batches of {PRODUCTS} price changes, "
        "timed and counted (as shop_owner, rolled back)"
    )
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.sql("SET LOCAL lock_timeout = '5s'", cursor=cursor)
        # Products of its own for each batch: a row changed again and again
        # in one transaction drags its dead versions along (none can be
        # pruned before the commit), and later batches would pay for them.
        rows = lab_rows(
            n,
            "min-price",
            products=batches * PRODUCTS + 1,
            shown=False,
            cursor=cursor,
        )
        # The inserts' foreign key checks are deferred to COMMIT (Django
        # declares every key DEFERRABLE INITIALLY DEFERRED), and ALTER TABLE
        # refuses a table with checks still pending: run them now.
        n.sql("SET CONSTRAINTS ALL IMMEDIATE", cursor=cursor)
        # The planner then knows the tables' sizes, rows of this transaction
        # included, whatever state the database was in.
        n.sql("ANALYZE catalog_product, catalog_product_variant", cursor=cursor)

        n.say("One price change, explained (the triggers' time is reported apart):")
        plan = n.sql(
            "EXPLAIN (ANALYZE, COSTS OFF) " + PRICE_SQL,
            [NEW_CHEAP, rows.pop()[1]],
            cursor=cursor,
            limit=20,
        )
        n.expect(
            any(line[0].startswith(f"Trigger {TRIGGER}:") for line in plan),
            f"the statement fired {TRIGGER} once, at its end",
        )

        def row_writes() -> dict:
            cursor.execute(ROW_WRITES_SQL)
            return {table: (upd, hot) for table, upd, hot in cursor.fetchall()}

        n.say(
            f"{ROUNDS} rounds of five batches, interleaved; each batch changes one "
            f"variant of each of {PRODUCTS} products no batch has touched, "
            f"to {NEW_CHEAP} (the cheap one) or {NEW_DEAR} (the dear one):"
        )
        for case in CASES:
            n.say(f"    {case.name:<17} {case.what}")
        n.show_sql(PRICE_SQL, label="each: one statement per variant")
        n.show_sql(BULK_PRICE_SQL, label="one: one statement for all of them")
        n.show_sql(
            f"ALTER TABLE catalog_product_variant DISABLE TRIGGER {TRIGGER}",
            label="no trigger: around those batches, and ENABLE after them",
        )
        fresh = iter(range(0, len(rows), PRODUCTS))
        times = {case.name: [] for case in CASES}
        writes = {}
        drifted = None
        for _ in range(ROUNDS):
            for case in CASES:
                chunk = rows[next(fresh) :][:PRODUCTS]
                if case.variants == "cheap":
                    price, ids = NEW_CHEAP, [row[1] for row in chunk]
                else:
                    price, ids = NEW_DEAR, [row[2] for row in chunk]
                if not case.trigger:
                    cursor.execute(
                        f"ALTER TABLE catalog_product_variant DISABLE TRIGGER {TRIGGER}"
                    )
                before = row_writes()
                started = time.perf_counter()
                if case.bulk:
                    cursor.execute(BULK_PRICE_SQL, [price, ids])
                else:
                    cursor.executemany(PRICE_SQL, [(price, i) for i in ids])
                times[case.name].append(time.perf_counter() - started)
                writes.setdefault(case.name, delta(before, row_writes()))
                if not case.trigger:
                    if drifted is None:
                        cursor.execute(read_sql(DRIFT_SQL_FILE))
                        drifted = len(cursor.fetchall())
                    cursor.execute(
                        f"ALTER TABLE catalog_product_variant ENABLE TRIGGER {TRIGGER}"
                    )
        report(n, times, writes)
        (indexes,) = n.sql(PRODUCT_INDEXES_SQL, cursor=cursor)[0]

    product, variant = "catalog_product", "catalog_product_variant"
    n.expect(
        writes["each, moves"][product] == (PRODUCTS, 0)
        and writes["one, moves"][product] == (PRODUCTS, 0),
        f"each of the {PRODUCTS} new minimums rewrote its product row too, "
        "whether the variants changed one by one or in one statement, and never "
        "as a HOT update: min_price is in the product's indexes, so each new row "
        f"version also gets an entry in the indexes ({indexes} on "
        "catalog_product) whose condition it meets",
    )
    n.expect(
        writes["each, stays"][product] == (0, 0),
        "a price that leaves the minimum alone rewrites no product (IS DISTINCT "
        "FROM), though the trigger still ran and locked the product",
    )
    n.expect(
        all(
            writes[case.name][product] == (0, 0)
            and writes[case.name][variant][0] == PRODUCTS
            for case in CASES
            if not case.trigger
        ),
        "without the trigger only the variants are written",
    )
    n.expect(
        drifted == PRODUCTS,
        f"and then the drift query lists all {PRODUCTS} products: the copy is "
        "wrong the moment nothing keeps it",
    )


def delta(before: dict, after: dict) -> dict:
    return {
        table: tuple(a - b for a, b in zip(after[table], before[table], strict=True))
        for table in after
    }


def report(n: Narrator, times: dict, writes: dict) -> None:
    medians = {case.name: statistics.median(times[case.name]) for case in CASES}
    rows = []
    for case in CASES:
        seconds = medians[case.name]
        counts = writes[case.name]
        rows.append(
            (
                case.name,
                f"{seconds * 1e6 / PRODUCTS:.0f}",
                f"{seconds / medians[case.baseline]:.2f}x",
                counts["catalog_product_variant"][0],
                counts["catalog_product"][0],
                counts["catalog_product"][1],
            )
        )
    n.table(
        [
            "batch",
            "us per variant",
            "vs no trigger",
            "variants updated",
            "products updated",
            "of them HOT",
        ],
        rows,
    )
    # Time is reported, never claimed: it moves with whatever else shares the
    # machine, while the row counts are the same on every run.
    for case in CASES:
        runs = " ".join(f"{s * 1e6 / PRODUCTS:.0f}" for s in times[case.name])
        n.say(f"    {case.name}, us per variant in each round: {runs}")
    n.say(
        "    The 'each' batches go out pipelined (psycopg's executemany), so their "
        "times hold little network waiting; a client that waits for each answer "
        "adds a round trip to every statement, trigger or not."
    )


def product_row_lock(n: Narrator) -> None:
    n.step("Two price changes, two variants, one product row to lock")
    names = catalog_names("min-price-lock")
    cleanup = {"like": f"{names['slug']}-%", "slug": names["slug"]}
    with connect() as first, connect() as second:
        # A run that was killed left its rows: start from none.
        first.execute(DELETE_ROWS_SQL, cleanup)
        first.commit()
        try:
            # Committed, since a second session sees committed rows only;
            # inactive, so that it is never on anyone's list meanwhile.
            ((product, cheap, dear),) = lab_rows(
                n,
                "min-price-lock",
                products=1,
                is_active=False,
                shown=False,
                cursor=first.cursor(),
            )
            first.commit()
            n.say("    COMMIT (a second session sees committed rows only)")

            n.say("Session 1 changes the cheap variant's price, and has not committed:")
            n.sql(PRICE_SQL, [NEW_CHEAP, cheap], cursor=first.cursor())
            n.say("Session 2 changes the dear variant's price, another row:")
            second_cursor = second.cursor()
            n.sql(
                "SELECT set_config('lock_timeout', '300ms', true)",
                cursor=second_cursor,
                label="waits at most 300 ms for a lock",
            )
            cause = n.expect_error(
                lambda: n.sql(PRICE_SQL, [NEW_DEAR, dear], cursor=second_cursor),
                sqlstate="55P03",
                claim="session 2 waited for session 1 although they change different "
                "rows: both triggers lock the same product",
            )
            context = (getattr(cause.diag, "context", None) or "").splitlines()
            n.say("    where session 2 waited (the error's CONTEXT, innermost first):")
            for line in context:
                n.say(f"       {line}")
            n.expect(
                any("catalog_product_refresh_min_price" in line for line in context),
                "the wait was inside catalog_product_refresh_min_price(), at its "
                "FOR UPDATE of the product",
            )
            second.rollback()
            n.say("    session 2: ROLLBACK")

            first.commit()
            n.say("    session 1: COMMIT")
            n.sql(PRICE_SQL, [NEW_DEAR, dear], cursor=second.cursor())
            second.commit()
            n.say("    session 2, again: COMMIT")
            (row,) = n.sql(MIN_PRICE_SQL, [product], cursor=second.cursor())
            n.expect(
                row[0] == NEW_CHEAP,
                "once session 1 had committed, session 2 went through, and "
                "min_price holds both changes",
            )
        finally:
            for session in (first, second):
                session.rollback()  # whatever a failed step left open
            first.execute(DELETE_ROWS_SQL, cleanup)
            first.commit()
