"""Lab `sharding` (15): one table on two shards through postgres_fdw, and its caveats.

The order archive (analytics/shards.py) is partitioned by HASH (customer_id)
into two foreign tables whose rows live on two small clusters
(`scripts/services.sh shards up`). The lab archives 1,000 orders of twenty
made-up customers through the partitioned table, reads each shard directly
to see where the rows went, and shows the plans: one customer's lookup
pruned to one shard, a GROUP BY pushed down to both, and the estimates with
and without use_remote_estimate. Then the caveats, as they happen: a COMMIT
that one shard refuses after the other has already committed, no unique key
across shards, a row written to the wrong partition, and the aggregates
that stay on the primary.

The lab's rows have negative ids, which no real order or customer has (both
come from identity sequences), and are deleted at the end. A database
without the archive gets one for the lab's run (`manage.py shards setup`),
removed again at the end.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from typing import NamedTuple

from django.db import connections

from analytics import shards
from shop.lab import LabFailed, Narrator, connect, lab, rolled_back
from shop.sql_files import read_sql

CUSTOMERS = 20
ORDERS = 1000
LAB_RANGE = {"low": -9999, "high": -1}
ARCHIVE_ORDERS_SQL = """
INSERT INTO shards.order_history (order_id, customer_id, status, total, created_at)
SELECT -g, -1 - mod(g, %(customers)s), 'paid', 10 + mod(g, 90),
       now() - g * interval '1 hour'
FROM generate_series(1, %(orders)s) AS g
"""
# On the primary: the customers whose hash lands in one remainder, as
# PostgreSQL's own partition routing computes it.
HASHED_TO_SQL = """
SELECT array_agg(c ORDER BY c DESC) AS customers
FROM generate_series(-%(customers)s, -1) AS c
WHERE satisfies_hash_partition(
    'shards.order_history'::regclass, %(modulus)s, %(remainder)s, c::bigint)
"""
# On a shard, directly.
ON_SHARD_SQL = """
SELECT count(*) AS orders,
       array_agg(DISTINCT customer_id ORDER BY customer_id DESC) AS customers
FROM order_history
WHERE order_id BETWEEN %(low)s AND %(high)s
"""
# What postgres_fdw sent a shard, from the shard's pg_stat_statements: the
# statements whose text starts with `prefix`, and the rows they touched.
SENT_SQL = """
SELECT coalesce(sum(calls), 0)::bigint AS statements,
       coalesce(sum(rows), 0)::bigint AS rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query LIKE %(prefix)s
"""
CUSTOMER_ORDERS_SQL = """
SELECT order_id, status, total, created_at
FROM shards.order_history
WHERE customer_id = %(customer)s
ORDER BY created_at DESC
LIMIT 5
"""
PER_CUSTOMER_SQL = """
SELECT customer_id, count(*) AS orders, sum(total) AS spent
FROM shards.order_history
WHERE order_id BETWEEN %(low)s AND %(high)s
GROUP BY customer_id
"""
GRAND_TOTAL_SQL = """
SELECT count(*) AS orders, sum(total) AS spent
FROM shards.order_history
WHERE order_id BETWEEN %(low)s AND %(high)s
"""
ONE_CUSTOMER_SQL = "SELECT * FROM shards.order_history WHERE customer_id = %(customer)s"
COUNT_ONE_CUSTOMER_SQL = (
    "SELECT count(*) FROM shards.order_history WHERE customer_id = %(customer)s"
)
ROWS_BY_ID_SQL = """
SELECT tableoid::regclass AS partition, order_id, customer_id
FROM shards.order_history
WHERE order_id = ANY (%(ids)s)
ORDER BY order_id DESC, customer_id DESC
"""
ON_SHARD_BY_ID_SQL = (
    "SELECT order_id, customer_id FROM order_history WHERE order_id = ANY (%(ids)s)"
)
ARCHIVE_ONE_SQL = """
INSERT INTO shards.order_history (order_id, customer_id, status, total, created_at)
VALUES (%(order)s, %(customer)s, 'paid', 10, now())
"""
ARCHIVE_TWICE_SQL = """
INSERT INTO shards.order_history (order_id, customer_id, status, total, created_at)
VALUES (%(order)s, %(customer)s, 'paid', 10, now()),
       (%(order)s, %(customer)s, 'cancelled', 10, now())
"""
DELETE_SQL = (
    "DELETE FROM shards.order_history WHERE order_id BETWEEN %(low)s AND %(high)s"
)


@lab(
    "sharding",
    chapter="15",
    summary="Hash partitions on two postgres_fdw shards: routing, pushdown, caveats",
)
def sharding(n: Narrator) -> None:
    try:
        shards.shards_check()
    except shards.ShardsUnavailable as exc:
        raise LabFailed(f"the shards are not running: {exc}") from exc
    database = connections["default"].settings_dict["NAME"]
    with ExitStack() as stack:
        n.step("The archive: one partitioned table, a foreign partition per shard")
        # One line either way, so that the transcript's lines stay where the
        # chapter's excerpts of it expect them.
        if shards.archive_ready(using="default"):
            n.say(f"    -- {database} has the archive (manage.py shards setup)")
        else:
            shards.shards_setup(using="owner")
            stack.callback(shards.shards_teardown, using="owner")
            n.say(
                f"    -- {database} had no archive: set up for this run, removed after"
            )
        stack.callback(_delete_lab_rows, n)
        rows = n.sql(read_sql(shards.SQL_DIR + "archive_partitions_v01.sql"))
        n.expect(
            [row[0] for row in rows] == [s.partition for s in shards.SHARDS],
            "two partitions, each a foreign table on a server of its own",
        )
        conns = {
            shard: stack.enter_context(shards.shard_connect(shard, database))
            for shard in shards.SHARDS
        }
        n.sql(DELETE_SQL, LAB_RANGE, label="rows an interrupted run may have left")
        home = _routing(n, conns)
        _pruning(n, home)
        _pushdown(n)
        _estimates(n, conns, home)
        _no_atomic_commit(n, conns, home)
        _no_global_key(n, home)
        _kept_on_the_primary(n)


def _routing(n: Narrator, conns) -> dict[int, shards.Shard]:
    """Archive the lab's orders; return each customer's shard, read on the shards."""
    n.step(
        f"Insert {ORDERS} orders of {CUSTOMERS} customers: each row goes to one shard"
    )
    before = {s: _sent(s, conns[s], "INSERT%") for s in shards.SHARDS}
    n.sql(ARCHIVE_ORDERS_SQL, {"customers": CUSTOMERS, "orders": ORDERS})
    home = {}
    total = 0
    for shard in shards.SHARDS:
        params = {"customers": CUSTOMERS, "modulus": shards.MODULUS}
        params["remainder"] = shard.remainder
        hashed = n.sql(
            HASHED_TO_SQL,
            params,
            label=f"the primary: customers whose hash is remainder {shard.remainder}",
        )[0][0]
        count, found = n.sql(
            ON_SHARD_SQL,
            LAB_RANGE,
            cursor=conns[shard].cursor(),
            label=f"{shard.name}, directly (port {shard.port}, as {shards.SHARD_ROLE})",
        )[0]
        n.expect(
            count > 0 and found == hashed,
            f"{shard.name} holds {count} orders, of exactly the customers whose "
            f"hash names remainder {shard.remainder}",
        )
        statements, rows = _sent(shard, conns[shard], "INSERT%", before[shard])
        n.say(
            f"    -- {shard.name} received its {rows} rows in {statements} INSERT "
            f"statement(s): batch_size 100, not a statement per row"
        )
        total += count
        home.update(dict.fromkeys(found, shard))
    n.expect(total == ORDERS, f"the {ORDERS} orders are all on one shard or the other")
    for shard in shards.SHARDS:
        # Statistics for the shard's own planner, which the remote estimates
        # below ask; autovacuum would take them within a minute or so.
        n.sql("ANALYZE order_history", cursor=conns[shard].cursor(), label=shard.name)
    return home


def _pruning(n: Narrator, home) -> None:
    n.step("One customer's orders: the plan reads one shard, the other is pruned")
    customer = -1
    shard = home[customer]
    plan = _plan(n, CUSTOMER_ORDERS_SQL, {"customer": customer})
    scans = [line for line in plan if "Foreign Scan" in line]
    remote = " ".join(_remote_sql(plan))
    n.expect(
        len(scans) == 1 and shard.partition in scans[0],
        f"one Foreign Scan, on {shard.partition}: the hash of {customer} names "
        f"{shard.name}, and the other shard is not asked at all",
    )
    n.expect(
        "customer_id = " in remote,
        "the WHERE clause runs on the shard (Remote SQL), so only the "
        "customer's rows cross the network",
    )
    n.say(
        "    -- the ORDER BY and LIMIT run here, on the primary: the shard sends all\n"
        "    -- of the customer's rows, and the primary keeps five"
    )
    n.sql(CUSTOMER_ORDERS_SQL, {"customer": customer}, label="and the rows")


def _pushdown(n: Narrator) -> None:
    n.step("GROUP BY the partition key: each shard aggregates its own customers")
    with rolled_back("default"):
        # Off by default: planning each partition's aggregate costs planning
        # time. What happens without it comes last, in _kept_on_the_primary:
        # plans whose shape the costs decide, so they would move the lines
        # of this transcript that the chapter quotes.
        n.sql("SET LOCAL enable_partitionwise_aggregate = on")
        plan = _plan(n, PER_CUSTOMER_SQL, LAB_RANGE)
        remote = _remote_sql(plan)
        n.expect(
            len(remote) == shards.MODULUS
            and all("GROUP BY" in line and "count(*)" in line for line in remote),
            "each shard runs the GROUP BY and sends one row per customer; the "
            "groups cannot overlap, since a customer lives on one shard",
        )


def _kept_on_the_primary(n: Narrator) -> None:
    n.step("What stays on the primary: grouping without partitionwise, and totals")
    plan = _plan(n, PER_CUSTOMER_SQL, LAB_RANGE, "enable_partitionwise_aggregate off")
    n.expect(
        all("GROUP BY" not in line for line in _remote_sql(plan))
        and "Aggregate" in plan[0],
        "off (PostgreSQL's default): the shards send every row, the primary groups",
    )
    with rolled_back("default"):
        n.sql("SET LOCAL enable_partitionwise_aggregate = on")
        plan = _plan(n, GRAND_TOTAL_SQL, LAB_RANGE, "a total over every customer")
        n.expect(
            all("count(" not in line for line in _remote_sql(plan))
            and "Aggregate" in plan[0],
            "a total is not pushed down in PostgreSQL 15: each shard sends its "
            "rows, and the primary counts them (in one Aggregate, or in a partial "
            "one per shard, as the costs decide: on the primary either way)",
        )


def _estimates(n: Narrator, conns, home) -> None:
    n.step("Remote estimates: a guess, local statistics, or an EXPLAIN per shard")
    customer = -1
    shard = home[customer]
    params = {"customer": customer}
    with rolled_back("owner"):
        n.say("    BEGIN  -- as shop_owner, who owns the foreign tables")
        actual = n.sql(
            COUNT_ONE_CUSTOMER_SQL,
            params,
            using="owner",
            label="the real count",
        )[0][0]
        guess = _estimate(n, conns[shard], shard, params, "use_remote_estimate off")
        n.sql("ANALYZE shards.order_history", using="owner", label="local statistics")
        local = _estimate(n, conns[shard], shard, params, "off, after ANALYZE")
        for each in shards.SHARDS:
            # The partition's name is a constant of analytics/shards.py.
            n.sql(
                f"ALTER FOREIGN TABLE shards.{each.partition} "
                "OPTIONS (ADD use_remote_estimate 'true')",
                using="owner",
            )
        remote = _estimate(n, conns[shard], shard, params, "use_remote_estimate on")
        n.say("    ROLLBACK  -- the options and the local statistics too")
    n.expect(
        guess.explains == 0 and abs(guess.rows - actual) > abs(remote.rows - actual),
        f"off, without statistics: a guess ({guess.rows} rows for {actual}), and "
        "no round trip to plan",
    )
    n.expect(
        local.explains == 0 and _close(local.rows, actual),
        f"off, after ANALYZE: {local.rows} rows from a sample the primary keeps; "
        "no round trip, but nothing refreshes it (autovacuum skips foreign tables)",
    )
    n.expect(
        remote.explains >= 1 and _close(remote.rows, actual),
        f"on: {remote.rows} rows, the shard's own estimate, for "
        f"{remote.explains} EXPLAIN(s) sent to {shard.name} at every planning",
    )


class _Estimate(NamedTuple):
    rows: int  # the planner's estimate for the scan
    explains: int  # the EXPLAINs the shard received while planning


def _close(estimate: int, actual: int) -> bool:
    """Within a tenth: statistics are a sample, not a count."""
    return abs(estimate - actual) <= actual / 10


def _estimate(n: Narrator, conn, shard, params, label: str) -> _Estimate:
    before = _sent(shard, conn, "EXPLAIN%")
    plan = _plan(n, ONE_CUSTOMER_SQL, params, label, using="owner", costs=True)
    explains, _ = _sent(shard, conn, "EXPLAIN%", before)
    n.say(f"       -- EXPLAINs {shard.name} received for this plan: {explains}")
    return _Estimate(int(re.search(r"rows=(\d+)", plan[0])[1]), explains)


def _no_atomic_commit(n: Narrator, conns, home) -> None:
    n.step("No atomic commit: one shard refuses its COMMIT, the other has committed")
    n.say(
        "    Two runs of one transaction that writes an order to shard1, then one\n"
        "    to shard2. In each run one shard gets its order twice, a duplicate\n"
        "    key that it refuses only at COMMIT (DEFERRABLE INITIALLY DEFERRED):\n"
        "    a stand-in for a crash, a full disk or a lost connection on that\n"
        "    shard at that moment."
    )
    left_behind = {}
    written = []
    for run, refusing in enumerate(shards.SHARDS, start=1):
        orders = {shard: -2000 - 10 * run - shard.remainder for shard in shards.SHARDS}
        written += orders.values()
        n.say(f"\n    -- run {run}: {refusing.name} refuses")
        with connect("default") as conn, conn.cursor() as cursor:
            n.say("    BEGIN")
            for shard in shards.SHARDS:
                params = {"order": orders[shard], "customer": _customer_on(home, shard)}
                if shard == refusing:
                    label = (
                        f"to {shard.name}: twice the same order id, accepted for now"
                    )
                    n.sql(ARCHIVE_TWICE_SQL, params, cursor=cursor, label=label)
                else:
                    n.sql(
                        ARCHIVE_ONE_SQL, params, cursor=cursor, label=f"to {shard.name}"
                    )
            n.say("    COMMIT")
            error = n.expect_error(
                conn.commit,
                sqlstate="23505",
                contains="COMMIT TRANSACTION",
                claim=f"the COMMIT fails: {refusing.name} refused the remote COMMIT "
                "that the primary sent it",
            )
            n.say(f"       CONTEXT: {error.diag.context.strip()}")
        other = next(shard for shard in shards.SHARDS if shard != refusing)
        rows = n.sql(
            ON_SHARD_BY_ID_SQL,
            {"ids": list(orders.values())},
            cursor=conns[other].cursor(),
            label=f"{other.name}, directly",
        )
        left_behind[refusing] = bool(rows)
        if rows:
            n.say(
                f"    -- {other.name} had committed before {refusing.name} refused: "
                f"its order {orders[other]}\n"
                "    -- stays, though the transaction failed"
            )
        else:
            n.say(
                f"    -- {refusing.name} was asked to COMMIT first, and "
                f"{other.name}'s transaction was rolled back"
            )
    n.expect(
        sum(left_behind.values()) == 1,
        "one of the two runs left a committed row behind a failed transaction: "
        "postgres_fdw commits the shards one after the other, stops at the "
        "first refusal, and cannot undo the COMMITs already done",
    )
    n.sql(
        ROWS_BY_ID_SQL,
        {"ids": written},
        label="the primary sees the orphan as archived",
    )
    n.say(
        "    -- parallel_commit (a server option since PostgreSQL 15) sends every\n"
        "    -- COMMIT at once: then a refusal never stops the others, and both\n"
        "    -- runs would leave a row (tests/analytics/test_shards.py). Atomic\n"
        "    -- would take two-phase commit (PREPARE TRANSACTION on each shard,\n"
        "    -- then COMMIT PREPARED), which postgres_fdw does not do; Citus does."
    )


def _no_global_key(n: Narrator, home) -> None:
    n.step("No unique key across shards, and nothing checks a partition's rows")
    first, second = (_customer_on(home, s) for s in shards.SHARDS)
    with rolled_back("owner"):
        n.say("    BEGIN  -- as shop_owner")
        n.expect_sql_error(
            "ALTER TABLE shards.order_history ADD PRIMARY KEY (customer_id, order_id)",
            using="owner",
            contains="partitions that are foreign tables",
            claim="no unique index on a table with foreign partitions, even one "
            "that includes the partition key",
        )
        for customer in (first, second):
            n.sql(
                ARCHIVE_ONE_SQL, {"order": -3001, "customer": customer}, using="owner"
            )
        rows = n.sql(ROWS_BY_ID_SQL, {"ids": [-3001]}, using="owner")
        n.expect(
            len(rows) == 2,
            "order -3001 twice, once per shard: each shard's key sees only its rows",
        )
        wrong = shards.SHARDS[0]
        # The partition's name is a constant of analytics/shards.py.
        n.sql(
            f"INSERT INTO shards.{wrong.partition}\n"
            "    (order_id, customer_id, status, total, created_at)\n"
            "VALUES (%(order)s, %(customer)s, 'paid', 10, now())",
            {"order": -3002, "customer": second},
            using="owner",
            label=f"straight into {wrong.partition}, for a customer of another shard",
        )
        by_customer = n.sql(
            "SELECT order_id FROM shards.order_history "
            "WHERE customer_id = %(customer)s AND order_id = %(order)s",
            {"customer": second, "order": -3002},
            using="owner",
            label="look it up by its customer",
        )
        anywhere = n.sql(ROWS_BY_ID_SQL, {"ids": [-3002]}, using="owner")
        n.expect(
            not by_customer and len(anywhere) == 1,
            "accepted, and lost to lookups: the partition constraint is not "
            "checked on foreign tables, and pruning searches the customer's shard",
        )
        n.say("    ROLLBACK  -- rolls back both shards' transactions too")


def _customer_on(home, shard) -> int:
    return max(c for c, s in home.items() if s == shard)


def _plan(n, sql, params, label=None, *, using="default", costs=False) -> list[str]:
    explain = "EXPLAIN (SUMMARY ON)" if costs else "EXPLAIN (VERBOSE, COSTS OFF)"
    statement = explain + "\n" + sql.strip()
    n.show_sql(statement, params, label)
    with connections[using].cursor() as cursor:
        cursor.execute(statement, params)
        # pg_stat_statements makes EXPLAIN VERBOSE print a query identifier,
        # which differs between databases: left out.
        lines = [
            row[0]
            for row in cursor.fetchall()
            if not row[0].startswith("Query Identifier")
        ]
    for line in lines:
        n.say(f"       {line}")
    return lines


def _remote_sql(plan: list[str]) -> list[str]:
    return [line.strip() for line in plan if "Remote SQL:" in line]


def _sent(shard, conn, prefix: str, before=(0, 0)) -> tuple[int, int]:
    """Statements sent to `shard` that start with `prefix`, and their rows.

    Counted since `before`, an earlier result of this function.
    """
    statements, rows = conn.execute(SENT_SQL, {"prefix": prefix}).fetchone()
    return statements - before[0], rows - before[1]


def _delete_lab_rows(n: Narrator) -> None:
    n.step("Clean up")
    n.sql(DELETE_SQL, LAB_RANGE, label="the lab's rows, on both shards")
