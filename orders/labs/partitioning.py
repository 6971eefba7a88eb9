"""Lab `partitioning` (15): the stock ledger's months, pruning, the default
partition, and DETACH.

One transaction as shop_owner, rolled back: partitions are DDL, and
PostgreSQL's DDL is transactional, so the months the lab makes (in 2001,
which no shop data reaches) and the ones it detaches come back with the
rollback, like its rows. Until then it holds what that DDL locks (the stock
rows and orders against writes, the ledger whole), for about a second: on
a shop that is selling, run it in a quiet moment.
"""

from __future__ import annotations

import re

from django.db import connections

from orders.labs._common import _stock_rows
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

LEDGER = "orders_stock_movement"
LAB_MONTHS = ("2001-01-01", "2001-03-01")
PARTITION = re.compile(rf"^{LEDGER}_(y\d{{4}}m\d{{2}}|default)$")


def _plan(n: Narrator, cursor, sql: str, params=None) -> list[str]:
    n.show_sql("EXPLAIN (COSTS OFF) " + sql, params)
    cursor.execute("EXPLAIN (COSTS OFF) " + sql, params)
    lines = [row[0] for row in cursor.fetchall()]
    for line in lines:
        n.say(f"       {line}")
    return lines


def _scanned(lines: list[str]) -> set[str]:
    """The ledger's partitions a plan reads: the names after ' on '."""
    found = set()
    for line in lines:
        if " on " in line:
            name = line.split(" on ", 1)[1].split()[0]
            if PARTITION.match(name):  # not an index's name
                found.add(name)
    return found


@lab(
    "partitioning",
    chapter="15",
    summary="The stock ledger by month: routing, pruning, the default, DETACH",
)
def partitioning(n: Narrator) -> None:
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.say("    BEGIN  -- as shop_owner; rolled back at the end")
        # Making a month locks the stock rows and orders against writes
        # until the ROLLBACK, and detaching one locks the ledger: on a shop
        # that is selling, fail in seconds rather than queue its checkouts.
        cursor.execute("SET LOCAL lock_timeout = '2s'")
        n.step("The ledger is one table of monthly partitions")
        n.sql(
            "SELECT partstrat, pg_get_partkeydef(partrelid) AS key "
            "FROM pg_partitioned_table WHERE partrelid = %s::regclass",
            [LEDGER],
            cursor=cursor,
        )
        months = n.sql(
            read_sql("orders/sql/queries/stock_ledger_partitions_v01.sql"),
            cursor=cursor,
            label="orders/sql/queries/stock_ledger_partitions_v01.sql",
            limit=30,
        )
        n.expect(
            months[-1][0] == f"{LEDGER}_default" and len(months) >= 5,
            "monthly partitions (this month and three ahead at least), and a "
            "default partition last",
        )

        n.step("A stock change is routed to its month's partition")
        stock = _stock_rows(n, "15", on_hand=4, cursor=cursor, label="a stock row")
        level_id = stock[0].stock_id
        rows = n.sql(
            f"SELECT tableoid::regclass AS partition, reason, on_hand_delta "
            f"FROM {LEDGER} WHERE stock_level_id = %s",
            [level_id],
            cursor=cursor,
        )
        this_month = n.sql(
            "SELECT orders_stock_ledger_partition_name(current_date)",
            cursor=cursor,
        )[0][0]
        n.expect(
            [str(row[0]) for row in rows] == [this_month],
            "the trigger's 'initial' movement went to this month's partition",
        )

        n.step("Pruning: a query on a span reads only the months in it")
        made = n.sql(
            "SELECT orders_stock_ledger_partitions_ensure(%s, %s)",
            list(LAB_MONTHS),
            cursor=cursor,
            label="three months of 2001, for the lab",
        )
        n.expect(made[0][0] == 3, "three partitions made (DDL, in this transaction)")
        n.sql(
            f"INSERT INTO {LEDGER} (stock_level_id, on_hand_delta, reserved_delta, "
            "reason, created_at) "
            "SELECT %s, 1, 0, 'lab', d FROM generate_series("
            "'2001-01-15 00:00+00'::timestamptz, '2001-03-15', '1 month') AS d",
            [level_id],
            cursor=cursor,
            label="one movement in each",
        )
        one_month = _plan(
            n,
            cursor,
            f"SELECT * FROM {LEDGER} WHERE stock_level_id = %s "
            "AND created_at >= '2001-02-01 00:00+00' "
            "AND created_at < '2001-03-01 00:00+00'",
            [level_id],
        )
        n.expect(
            _scanned(one_month) == {f"{LEDGER}_y2001m02"},
            "one partition in the plan: the others were pruned while planning",
        )
        everywhere = f"SELECT * FROM {LEDGER} WHERE stock_level_id = %s"
        n.show_sql("EXPLAIN (COSTS OFF) " + everywhere, [level_id])
        cursor.execute("EXPLAIN (COSTS OFF) " + everywhere, [level_id])
        every = _scanned(row[0] for row in cursor.fetchall())
        n.say(f"       (an Append of {len(every)} scans, one per partition)")
        n.expect(
            len(every) == len(months) + 3,
            "without a condition on created_at, every partition is read "
            "(one index probe each)",
        )

        n.step("Pruning at run time: a generic plan does not know the month yet")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        n.sql(
            f"PREPARE ledger_month (timestamptz) AS SELECT count(*) FROM {LEDGER} "
            "WHERE created_at >= $1 AND created_at < $1 + interval '1 month'",
            cursor=cursor,
        )
        n.show_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
            "EXECUTE ledger_month('2001-02-01 00:00+00')"
        )
        cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
            "EXECUTE ledger_month('2001-02-01 00:00+00')"
        )
        runtime = [row[0] for row in cursor.fetchall()]
        for line in runtime:
            n.say(f"       {line}")
        cursor.execute("DEALLOCATE ledger_month")
        n.expect(
            any("Subplans Removed" in line for line in runtime)
            and _scanned(runtime) == {f"{LEDGER}_y2001m02"},
            "the executor removed the other months at startup (Subplans Removed)",
        )

        n.step("A month without a partition: the default partition keeps its rows")
        n.sql(
            f"INSERT INTO {LEDGER} (stock_level_id, on_hand_delta, reserved_delta, "
            "reason, created_at) VALUES (%s, 1, 0, 'lab', '2001-05-20 00:00+00')",
            [level_id],
            cursor=cursor,
            label="May 2001 has no partition: no error, the row waits in the default",
        )
        where = f"SELECT tableoid::regclass AS partition, count(*) FROM {LEDGER} "
        where += "WHERE stock_level_id = %s AND created_at >= '2001-05-01 00:00+00' "
        where += "AND created_at < '2001-06-01 00:00+00' GROUP BY 1"
        waiting = n.sql(where, [level_id], cursor=cursor)
        n.expect(
            [(str(r[0]), r[1]) for r in waiting] == [(f"{LEDGER}_default", 1)],
            "the row is in the default partition",
        )
        n.sql(
            "SELECT orders_stock_ledger_partitions_ensure('2001-05-01', '2001-05-01')",
            cursor=cursor,
            label="the maintenance task makes May: its rows move out of the default",
        )
        moved = n.sql(where, [level_id], cursor=cursor)
        n.expect(
            [(str(r[0]), r[1]) for r in moved] == [(f"{LEDGER}_y2001m05", 1)],
            "the row moved into its month; nothing lost",
        )

        n.step("Old months leave with DETACH, not DELETE")
        # The lab wrote those months in this very transaction: their
        # deferred foreign-key checks are still pending, and ALTER TABLE
        # (detaching drops the archived month's foreign keys) refuses a table
        # with pending checks. Run them now. A real detach meets months
        # nobody has written for years.
        n.sql("SET CONSTRAINTS ALL IMMEDIATE", cursor=cursor)
        detached = n.sql(
            "SELECT orders_stock_ledger_partitions_detach('2001-03-01')",
            cursor=cursor,
            label="detach the months that end by March 2001",
        )
        n.expect(
            [row[0] for row in detached]
            == [f"{LEDGER}_y2001m01", f"{LEDGER}_y2001m02"],
            "January and February 2001 detached, in one DDL statement each",
        )
        left = n.sql(
            f"SELECT count(*) FROM {LEDGER} WHERE stock_level_id = %s "
            "AND created_at < '2001-03-01'",
            [level_id],
            cursor=cursor,
        )
        archived = n.sql(
            f"SELECT count(*) FROM orders_archive.{LEDGER}_y2001m02",
            cursor=cursor,
        )
        n.expect(
            left[0][0] == 0 and archived[0][0] == 1,
            "their rows left the ledger and are kept in orders_archive",
        )
        n.say("    ROLLBACK")
