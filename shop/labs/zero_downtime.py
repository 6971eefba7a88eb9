"""Lab `zero-downtime` (17): a NOT NULL column and an index on a live table,
in steps whose locks are short.

The steps run on lab_zero_downtime, a throw-away table of ZD_ROWS rows
dropped in `finally`; each step reports the lock it held and the table scans
it made, from pg_locks and pg_stat_xact_user_tables.
"""

import threading
import time

from django.db import connections, transaction

from shop.lab import (
    LabFailed,
    Narrator,
    connect,
    create_throwaway,
    drop_throwaway,
    lab,
    rolled_back,
)

ZD_ROWS = 50_000
ZD_BATCH = 10_000

# What this session holds on the table, and how many sequential scans of the
# table it made since `scans_before` (pg_stat_xact_* counts are this
# backend's own and are not flushed while a transaction is open).
OBSERVE_SQL = """
SELECT l.mode AS lock_held,
       s.seq_scan - %(scans_before)s AS table_scans
FROM pg_locks AS l
JOIN pg_stat_xact_user_tables AS s ON s.relid = l.relation
WHERE l.pid = pg_backend_pid() AND l.relation = %(table)s::regclass
ORDER BY l.mode
"""
SCANS_SQL = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = %s::regclass"


@lab(
    "zero-downtime",
    chapter="17",
    summary="A NOT NULL column and an index on a live table, without long locks",
)
def zero_downtime(n: Narrator) -> None:
    n.step(f"A throw-away table with {ZD_ROWS:,} rows, standing in for a busy one")
    create_throwaway(
        n,
        "lab_zero_downtime",
        "(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "on_hand integer NOT NULL)",
    )
    try:
        n.sql(
            "INSERT INTO lab_zero_downtime (on_hand) "
            "SELECT mod(g, 100) FROM generate_series(1, %s) AS g",
            [ZD_ROWS],
            using="owner",
        )
        observed = []
        observed.append(_add_column(n))
        observed.append(_backfill(n))
        observed.append(_add_check_not_valid(n))
        observed.append(_validate(n))
        observed.append(_create_index_concurrently(n))
        observed.append(_set_not_null(n))
        n.step("Summary: the locks observed in pg_locks at each step")
        n.table(["step", "lock on the table", "table scans"], observed)
    finally:
        drop_throwaway(n, "lab_zero_downtime")


def _observed_ddl(n: Narrator, statements, *, while_open=None, rollback=False):
    """Run DDL in one transaction as shop_owner; return (lock modes, scans)."""
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        cursor.execute(SCANS_SQL, ["lab_zero_downtime"])
        (scans_before,) = cursor.fetchone()
        n.say("    BEGIN")
        for statement in statements:
            n.sql(statement, cursor=cursor)
        rows = n.sql(
            OBSERVE_SQL,
            {"scans_before": scans_before, "table": "lab_zero_downtime"},
            cursor=cursor,
            label="locks this session holds on the table; its scans in this step",
        )
        if while_open:
            while_open()
        if rollback:
            transaction.set_rollback(True, using="owner")
    n.say("    ROLLBACK" if rollback else "    COMMIT")
    return [mode for mode, _ in rows], rows[0][1]


def _filenode(n: Narrator, *, cursor=None, using="owner") -> int:
    rows = n.sql(
        "SELECT pg_relation_filenode(%s) AS filenode",
        ["lab_zero_downtime"],
        cursor=cursor,
        using=using,
    )
    return rows[0][0]


def _add_column(n: Narrator):
    n.step("1. ADD COLUMN, nullable and without a default: a catalog change only")
    before = _filenode(n)

    def reader_waits():
        n.say("    -- meanwhile, another session only wants to read:")
        with connect("default") as other, other.cursor() as cursor:
            n.sql("SET lock_timeout = '200ms'", cursor=cursor)
            n.expect_sql_error(
                "SELECT count(*) FROM lab_zero_downtime",
                cursor=cursor,
                sqlstate="55P03",
                claim="even a reader waits while the ALTER's lock is held: give "
                "migrations a lock_timeout and keep their transactions short",
            )

    modes, scans = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime ADD COLUMN reserved integer",
            # New rows get 0 from now on, so the backfill is a finite job.
            "ALTER TABLE lab_zero_downtime ALTER COLUMN reserved SET DEFAULT 0",
        ],
        while_open=reader_waits,
    )
    after = _filenode(n)
    n.expect(
        modes == ["AccessExclusiveLock"] and scans == 0 and after == before,
        "ADD COLUMN took ACCESS EXCLUSIVE but scanned nothing and kept the same "
        "file: no rewrite, so the lock lasts milliseconds",
    )
    n.say("    -- for contrast, a volatile default must write a value into every row:")
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.sql(
            "ALTER TABLE lab_zero_downtime "
            "ADD COLUMN lab_rewrite double precision DEFAULT random()",
            cursor=cursor,
        )
        rewritten = _filenode(n, cursor=cursor)
    n.expect(
        rewritten != before,
        "DEFAULT random() rewrote the table into a new file (rolled back here)",
    )
    return ("ADD COLUMN ... NULL; SET DEFAULT", ", ".join(modes), scans)


def _backfill(n: Narrator):
    n.step(f"2. Backfill in batches of {ZD_BATCH:,} rows, one short transaction each")
    rows = n.sql("SELECT min(id), max(id) FROM lab_zero_downtime", using="owner")
    low, high = rows[0]
    batch_sql = (
        "UPDATE lab_zero_downtime SET reserved = 0 "
        "WHERE id >= %s AND id < %s AND reserved IS NULL"
    )
    n.show_sql(batch_sql, [low, low + ZD_BATCH], label="each batch, by primary key")
    counts, first = [], None
    with connections["owner"].cursor() as cursor:
        for start in range(low, high + 1, ZD_BATCH):
            begun = time.monotonic()
            with transaction.atomic(using="owner"):
                if first is None:
                    cursor.execute(SCANS_SQL, ["lab_zero_downtime"])
                    (scans_before,) = cursor.fetchone()
                cursor.execute(batch_sql, [start, start + ZD_BATCH])
                counts.append(cursor.rowcount)
                if first is None:
                    params = {
                        "scans_before": scans_before,
                        "table": "lab_zero_downtime",
                    }
                    cursor.execute(OBSERVE_SQL, params)
                    first = cursor.fetchall()
            elapsed = (time.monotonic() - begun) * 1000
            n.say(
                f"    -> batch {len(counts)}: ids {start}..{start + ZD_BATCH - 1}, "
                f"{counts[-1]} row(s), committed in {elapsed:.0f} ms"
            )
    n.say("    -- inside batch 1, before its COMMIT:")
    n.show_sql(OBSERVE_SQL, params)
    n.table(["lock_held", "table_scans"], first)
    rows = n.sql(
        "SELECT count(*) AS still_null FROM lab_zero_downtime WHERE reserved IS NULL",
        using="owner",
    )
    n.expect(
        sum(counts) == ZD_ROWS
        and rows == [(0,)]
        and first == [("RowExclusiveLock", 0)],
        f"{len(counts)} batches set all {ZD_ROWS:,} rows; a batch holds ROW "
        "EXCLUSIVE (which lets other writers in) and finds its rows through the "
        "primary key, without scanning the table",
    )
    return ("UPDATE ... (each batch)", first[0][0], first[0][1])


def _add_check_not_valid(n: Narrator):
    n.step("3. ADD CONSTRAINT ... CHECK (reserved IS NOT NULL) NOT VALID")
    modes, scans = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime ADD CONSTRAINT "
            "lab_zero_downtime_reserved_not_null "
            "CHECK (reserved IS NOT NULL) NOT VALID"
        ],
    )
    n.expect(
        modes == ["AccessExclusiveLock"] and scans == 0,
        "NOT VALID: a brief ACCESS EXCLUSIVE, no scan; new and updated rows are "
        "checked from now on",
    )
    return ("ADD CONSTRAINT ... NOT VALID", ", ".join(modes), scans)


def _validate(n: Narrator):
    n.step("4. VALIDATE CONSTRAINT: scans the table under a weaker lock")

    def writer_proceeds():
        n.say("    -- meanwhile, another session writes:")
        with connect("default") as other, other.cursor() as cursor:
            n.sql("SET lock_timeout = '2s'", cursor=cursor)
            n.sql(
                "UPDATE lab_zero_downtime SET on_hand = on_hand + 1 WHERE id = %s",
                [1],
                cursor=cursor,
            )
            n.sql(
                "INSERT INTO lab_zero_downtime (on_hand) VALUES (%s)",
                [7],
                cursor=cursor,
            )
            other.rollback()
        n.say("    -> (the writer rolled back its rows, to keep the table as it was)")

    modes, scans = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime "
            "VALIDATE CONSTRAINT lab_zero_downtime_reserved_not_null"
        ],
        while_open=writer_proceeds,
    )
    n.expect(
        modes == ["ShareUpdateExclusiveLock"] and scans == 1,
        "VALIDATE scanned the table once and holds only SHARE UPDATE EXCLUSIVE, "
        "which let the writer through",
    )
    return ("VALIDATE CONSTRAINT", ", ".join(modes), scans)


def _create_index_concurrently(n: Narrator):
    n.step("5. CREATE INDEX CONCURRENTLY: writes go on while the index builds")
    ddl = (
        "CREATE INDEX CONCURRENTLY lab_zero_downtime_reserved_idx "
        "ON lab_zero_downtime (reserved)"
    )

    def in_a_transaction():
        with transaction.atomic(using="owner"):
            n.sql(ddl, using="owner")

    n.expect_error(
        in_a_transaction,
        sqlstate="25001",
        claim="CONCURRENTLY refuses to run inside a transaction block (a Django "
        "migration needs atomic = False)",
    )

    n.say(
        "\n    -- session B holds a snapshot from before the build, as a long\n"
        "    -- report would; session C (autocommit) runs the build:"
    )
    result: dict = {}
    with (
        connect("default", autocommit=True) as blocker,
        blocker.cursor() as b,
        connect("owner", autocommit=True) as session_c,
    ):
        n.sql("BEGIN ISOLATION LEVEL REPEATABLE READ", cursor=b, label="session B")
        n.sql("SELECT count(*) FROM lab_zero_downtime", cursor=b, label="session B")
        pid = session_c.info.backend_pid
        # Fail rather than hang if some other long transaction never ends.
        session_c.execute("SET lock_timeout = '30s'")
        builder = threading.Thread(target=_build_index, args=(session_c, ddl, result))
        builder.start()
        try:
            locks = _wait_for_builder(n, b, pid, result)
            n.expect(
                ("relation", "ShareUpdateExclusiveLock", True) in locks
                and any(
                    kind == "virtualxid" and not granted for kind, _, granted in locks
                ),
                "the build holds SHARE UPDATE EXCLUSIVE on the table and waits for "
                "session B's transaction to end",
            )
            n.sql(
                "INSERT INTO lab_zero_downtime (on_hand) VALUES (%s)",
                [7],
                cursor=b,
                label="session B writes while the build waits",
            )
            n.sql("ROLLBACK", cursor=b, label="session B ends its transaction")
        finally:
            builder.join(timeout=60)
            if builder.is_alive():
                _cancel(pid)
                builder.join(timeout=10)
    if "error" in result:
        _build_failed(result["error"])
    n.say(f"    -> session C: {ddl} finished after {result['seconds']:.2f} s")
    rows = n.sql(
        "SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = %s::regclass",
        ["lab_zero_downtime_reserved_idx"],
        using="owner",
    )
    n.expect(
        rows == [(True, True)],
        "the index is valid once every older transaction had ended",
    )
    return ("CREATE INDEX CONCURRENTLY", "ShareUpdateExclusiveLock", "not measured")


def _build_failed(error) -> None:
    raise LabFailed(
        f"CREATE INDEX CONCURRENTLY failed: {error}. It waits for every "
        "transaction in this database that is older than the build; look for "
        "long ones in pg_stat_activity (xact_start, state 'idle in transaction')."
    )


def _build_index(conn, ddl: str, result: dict) -> None:
    """Session C: run the concurrent build, recording how it ended."""
    begun = time.monotonic()
    try:
        conn.execute(ddl)
    except Exception as exc:  # reported by the lab's main thread
        result["error"] = exc
    result["seconds"] = time.monotonic() - begun


def _wait_for_builder(n: Narrator, cursor, pid: int, result: dict, timeout=15.0):
    """Poll pg_locks until session C is seen waiting; return its locks."""
    locks_sql = """
        SELECT locktype, mode, granted
        FROM pg_locks
        WHERE pid = %(pid)s
          AND (relation = %(table)s::regclass OR locktype = 'virtualxid')
        ORDER BY granted DESC, locktype
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "error" in result:
            _build_failed(result["error"])
        params = {"pid": pid, "table": "lab_zero_downtime"}
        cursor.execute(locks_sql, params)
        rows = cursor.fetchall()
        if any(kind == "virtualxid" and not granted for kind, _, granted in rows):
            n.show_sql(locks_sql, params, label="session B looks at session C's locks")
            n.table(["locktype", "mode", "granted"], rows)
            return rows
        time.sleep(0.05)
    raise LabFailed(f"session C was not seen waiting within {timeout} s")


def _cancel(pid: int) -> None:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT pg_cancel_backend(%s)", [pid])


def _set_not_null(n: Narrator):
    n.step("6. SET NOT NULL: a validated CHECK (reserved IS NOT NULL) spares the scan")
    n.say("    -- without the CHECK (rolled back), PostgreSQL must read every row:")
    _, scans_without = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime "
            "DROP CONSTRAINT lab_zero_downtime_reserved_not_null",
            "ALTER TABLE lab_zero_downtime ALTER COLUMN reserved SET NOT NULL",
        ],
        rollback=True,
    )
    n.expect(scans_without == 1, "without the CHECK, SET NOT NULL scanned the table")

    n.say("    -- with the validated CHECK in place:")
    notices: list[str] = []
    raw = connections["owner"]
    raw.ensure_connection()

    def collect(diag):
        notices.append(diag.message_primary)

    raw.connection.add_notice_handler(collect)
    try:
        modes, scans = _observed_ddl(
            n,
            [
                # DEBUG1 carries the server's own account of the decision.
                "SET LOCAL client_min_messages = debug1",
                "ALTER TABLE lab_zero_downtime ALTER COLUMN reserved SET NOT NULL",
            ],
        )
    finally:
        raw.connection.remove_notice_handler(collect)
    for notice in notices:
        n.say(f"    -> the server, during the ALTER: DEBUG: {notice}")
    n.expect(
        modes == ["AccessExclusiveLock"] and scans == 0,
        "with the validated CHECK, SET NOT NULL read no rows: its ACCESS EXCLUSIVE "
        "lasts only as long as a catalog change",
    )
    n.sql(
        "ALTER TABLE lab_zero_downtime "
        "DROP CONSTRAINT lab_zero_downtime_reserved_not_null",
        using="owner",
        label="the CHECK has done its job; NOT NULL now holds the rule",
    )
    return ("SET NOT NULL", ", ".join(modes), scans)
