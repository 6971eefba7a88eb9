"""Lab `acid` (01): atomicity, consistency, isolation and durability, each shown live.

Durability needs a real COMMIT, so that step writes to a throw-away table,
lab_acid_durability, dropped in `finally`; the other steps roll back.
"""

from decimal import Decimal

from django.db import transaction

from catalog.labs.rows import catalog_rows
from shop.lab import (
    Narrator,
    connect,
    create_throwaway,
    drop_throwaway,
    lab,
    rolled_back,
)


@lab(
    "acid",
    chapter="01",
    summary="Atomicity, consistency, isolation and durability, each shown live",
)
def acid(n: Narrator) -> None:
    _atomicity(n)
    _consistency(n)
    _isolation(n)
    _durability(n)


def _atomicity(n: Narrator) -> None:
    n.step("Atomicity: the statements of a transaction happen together or not at all")
    count = """
        SELECT (SELECT count(*) FROM catalog_category WHERE slug = %(slug)s)
                 AS categories,
               (SELECT count(*) FROM catalog_product WHERE slug = %(slug)s)
                 AS products
    """
    names = {"slug": "lab-acid-atomicity"}
    before = n.sql(count, names)

    def publish_product_with_a_bad_price():
        with transaction.atomic(using="default"):
            n.say("    BEGIN")
            category = n.sql(
                "INSERT INTO catalog_category (name, slug) VALUES (%s, %s) "
                "RETURNING id",
                ["Lab ACID", names["slug"]],
            )[0][0]
            product = n.sql(
                """
                INSERT INTO catalog_product
                    (category_id, name, slug, description, is_active,
                     created_at, updated_at)
                VALUES (%s, %s, %s, '', true, now(), now())
                RETURNING id
                """,
                [category, "Lab ACID product", names["slug"]],
            )[0][0]
            n.sql(
                "INSERT INTO catalog_product_variant "
                "(product_id, sku, name, price, is_active) "
                "VALUES (%s, %s, '', %s, true)",
                [product, "LAB-ACID-1", Decimal("-1.00")],
                label="the third statement breaks a rule",
            )

    n.expect_error(
        publish_product_with_a_bad_price,
        sqlstate="23514",
        constraint="catalog_variant_price_non_negative",
        claim="the third INSERT is refused (a negative price)",
    )
    n.say("    ROLLBACK  -- atomic() rolls back when an exception leaves the block")
    after = n.sql(count, names)
    n.expect(
        after == before == [(0, 0)],
        "the category and product inserted before the error are gone too",
    )


def _consistency(n: Narrator) -> None:
    n.step("Consistency: a transaction moves the data from one valid state to another")
    with rolled_back("default"):
        n.say("    BEGIN")
        (variant,) = catalog_rows(
            n, "acid", on_hand=5, label="setup: 5 units on hand, in the transaction"
        )
        stock = variant.stock_id
        reserve = (
            "UPDATE catalog_stock_level SET reserved = reserved + %s WHERE id = %s"
        )
        n.expect_sql_error(
            reserve,
            [6, stock],
            sqlstate="23514",
            constraint="catalog_stock_reserved_within_on_hand",
            claim="reserving 6 of 5 units is refused by a CHECK",
        )
        n.sql(reserve, [5, stock], label="reserving all 5 is a valid state")
        rows = n.sql(
            "SELECT quantity_on_hand, reserved FROM catalog_stock_level WHERE id = %s",
            [stock],
        )
        n.expect(rows == [(5, 5)], "the row holds only the valid change")
        n.say("    ROLLBACK")


def _isolation(n: Narrator) -> None:
    n.step("Isolation: another session does not see uncommitted rows (READ COMMITTED)")
    slug = "lab-acid-isolation"
    seen = "SELECT count(*) AS visible FROM catalog_category WHERE slug = %s"
    with rolled_back("default"):
        n.say("    BEGIN  -- session A, the app")
        n.sql(
            "INSERT INTO catalog_category (name, slug) VALUES (%s, %s)",
            ["Lab ACID isolation", slug],
            label="session A",
        )
        with connect("default") as other, other.cursor() as cursor:
            level = n.sql(
                "SHOW transaction_isolation", cursor=cursor, label="session B"
            )
            rows = n.sql(seen, [slug], cursor=cursor, label="session B")
            n.expect(
                level == [("read committed",)] and rows == [(0,)],
                "session B, at READ COMMITTED, does not see A's uncommitted row",
            )
        rows = n.sql(seen, [slug], label="session A")
        n.expect(rows == [(1,)], "session A sees its own row")
        n.say("    ROLLBACK  -- session A")


def _durability(n: Narrator) -> None:
    n.step("Durability: COMMIT returns once the change is in the flushed WAL")
    settings = n.sql(
        "SELECT name, setting FROM pg_settings "
        "WHERE name IN ('fsync', 'synchronous_commit', 'wal_level') ORDER BY name"
    )
    values = dict(settings)
    n.expect(
        values["fsync"] == "on" and values["synchronous_commit"] != "off",
        "fsync is on and synchronous_commit is not off: a commit waits for the "
        "WAL flush (with either off, the server trades durability for speed)",
    )
    create_throwaway(
        n, "lab_acid_durability", "(id bigint PRIMARY KEY, note text NOT NULL)"
    )
    try:
        before = n.sql(
            "SELECT pg_current_wal_lsn() AS lsn", label="the WAL position before"
        )[0][0]
        with transaction.atomic(using="default"):
            n.say("    BEGIN")
            n.sql(
                "INSERT INTO lab_acid_durability (id, note) VALUES (%s, %s)",
                [1, "paid"],
            )
        n.say("    COMMIT")
        rows = n.sql(
            """
            SELECT pg_current_wal_lsn() AS lsn,
                   pg_current_wal_flush_lsn() AS flushed,
                   pg_wal_lsn_diff(pg_current_wal_flush_lsn(), %s::pg_lsn)
                     AS bytes_flushed_since
            """,
            [before],
            label="the WAL position after COMMIT",
        )
        n.expect(
            rows[0][2] > 0,
            f"the WAL moved forward from {before} and was flushed past it: the "
            "committed row would survive a crash",
        )
    finally:
        drop_throwaway(n, "lab_acid_durability")
