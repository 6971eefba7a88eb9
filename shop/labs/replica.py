"""Lab `replica` (18): a streaming replica, how far behind it is, and where
the router sends reads.

The replica is the real standby of the primary (scripts/services.sh). The
lab commits rows to a throw-away table, lab_replica_lag, on the primary and
times how long each takes to appear on the replica; the table is dropped in
`finally`. The router's decisions are shown with shop/replica.py's own
functions, on the same connections the app uses.
"""

import time

from django.conf import settings
from django.db import connections, router, transaction

from shop import replica
from shop.accounts.models import User
from shop.lab import LabFailed, Narrator, create_throwaway, drop_throwaway, lab
from shop.sql_files import read_sql

SINGLE_COMMITS = 100
BATCH_COMMITS = 10
BATCH_ROWS = 1_000
INSERT_SQL = (
    "INSERT INTO lab_replica_lag (id, payload) "
    "SELECT g, repeat('x', 200) FROM generate_series(%s::bigint, %s::bigint) AS g"
)
VISIBLE_SQL = "SELECT 1 FROM lab_replica_lag WHERE id = %s"
TABLE_SQL = "SELECT 1 WHERE to_regclass('lab_replica_lag') IS NOT NULL"


def _until_on_replica(sql: str, params, timeout: float) -> float:
    """Seconds until `sql` returns a row on the replica; LabFailed past `timeout`."""
    started = time.perf_counter()
    with connections["replica"].cursor() as cursor:
        while True:
            cursor.execute(sql, params)
            if cursor.fetchone():
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise LabFailed(f"the replica did not show it within {timeout}s")


def _seen_on_replica(row_id: int, timeout: float) -> float:
    return _until_on_replica(VISIBLE_SQL, [row_id], timeout)


def _replay_delays(commits: int, rows: int, first_id: int, timeout: float):
    """Commit `commits` transactions of `rows` rows; each one's replay delay."""
    delays = []
    with connections["owner"].cursor() as cursor:
        for i in range(commits):
            low = first_id + i * rows
            # Autocommit: the INSERT is its own transaction, committed when
            # execute() returns, which is where the clock starts.
            cursor.execute(INSERT_SQL, [low, low + rows - 1])
            delays.append(_seen_on_replica(low, timeout))
    return sorted(delays)


def _percentile(delays, fraction):
    return delays[min(len(delays) - 1, int(fraction * len(delays)))]


def _show_delays(n: Narrator, label: str, delays) -> None:
    n.table(
        ["commits", "p50 ms", "p99 ms", "max ms"],
        [
            (
                f"{len(delays)} x {label}",
                f"{_percentile(delays, 0.5) * 1000:.1f}",
                f"{_percentile(delays, 0.99) * 1000:.1f}",
                f"{delays[-1] * 1000:.1f}",
            )
        ],
    )


def _usable_verdict(attempts: int = 3) -> replica.ReplicaStatus:
    """The probe's verdict, asked again if it caught WAL in flight after a
    quiet second (the row-by-row timing above shows how short that is)."""
    status = replica.replica_status(wait=True)
    for _ in range(attempts - 1):
        if status.usable:
            break
        replica.replica_forget()
        status = replica.replica_status(wait=True)
    return status


@lab(
    "replica",
    chapter="18",
    summary="a streaming replica: its lag measured, and where the router sends reads",
)
def replica_lab(n: Narrator) -> None:
    n.step("Two servers, one database: the primary, and a standby replaying its WAL")
    primary = n.sql("SELECT pg_is_in_recovery() AS standby", using="default")
    standby = n.sql("SELECT pg_is_in_recovery() AS standby", using="replica")
    n.expect(not primary[0][0], "the primary is not in recovery")
    n.expect(standby[0][0], "the replica is a standby, replaying the primary's WAL")

    n.step("The standby only reads")
    n.expect_sql_error(
        "CREATE TEMP TABLE lab_replica_scratch (id integer)",
        using="replica",
        sqlstate="25006",
        claim="even a temporary table is refused: a standby is read-only",
    )

    n.step("How long a commit takes to reach the replica")
    create_throwaway(
        n, "lab_replica_lag", "(id bigint PRIMARY KEY, payload text NOT NULL)"
    )
    window = settings.READ_YOUR_WRITES_SECONDS
    try:
        n.say("Each commit on the primary, then the replica asked until it shows:")
        n.show_sql(INSERT_SQL, label="on the primary, autocommit")
        n.show_sql(VISIBLE_SQL, label="on the replica, until it answers")
        # The table itself must have reached the replica first.
        _until_on_replica(TABLE_SQL, None, window)
        single = _replay_delays(SINGLE_COMMITS, 1, 1, window)
        batch = _replay_delays(BATCH_COMMITS, BATCH_ROWS, 1_000_000, window)
        _show_delays(n, "1 row", single)
        _show_delays(n, f"{BATCH_ROWS:,} rows", batch)
        n.expect(
            max(single[-1], batch[-1]) < window,
            f"every commit was on the replica within READ_YOUR_WRITES_SECONDS "
            f"({window:g} s), the time a client that wrote reads the primary",
        )
    finally:
        drop_throwaway(n, "lab_replica_lag")

    n.step("How the router measures the lag (shop/replica.py: replica_status)")
    rows = n.sql(
        read_sql(replica.PRIMARY_POSITION_SQL), using="default", label="the primary"
    )
    n.sql(
        read_sql(replica.REPLICA_POSITION_SQL),
        {"primary_lsn": rows[0][0]},
        using="replica",
        label="then the replica",
    )
    status = _usable_verdict()
    lag = "unknown" if status.lag_seconds is None else f"{status.lag_seconds:.3f}"
    n.say(
        f"    -> verdict: {status.state}, lag at most {lag} s "
        f"(the limit: REPLICA_MAX_LAG_SECONDS = {settings.REPLICA_MAX_LAG_SECONDS:g})"
    )
    n.expect(status.usable, "the replica is usable: it answers and hardly lags")

    n.step("Where a read goes (shop/db_routers.py: ReadReplicaRouter)")
    outside = router.db_for_read(User)
    with replica.request_reads(replica.REPLICA):
        chosen = router.db_for_read(User)
        with transaction.atomic():
            in_transaction = router.db_for_read(User)
        with replica.reads_from_primary():
            forced = router.db_for_read(User)
    n.table(
        ["where the read is made", "alias"],
        [
            ("outside any request (a shell, a task)", outside),
            ("a request routed to the replica", chosen),
            ("... inside transaction.atomic()", in_transaction),
            ("... inside reads_from_primary()", forced),
        ],
    )
    n.expect(
        (outside, chosen, in_transaction, forced)
        == ("default", "replica", "default", "default"),
        "only the request's own reads go to the replica; a transaction reads "
        "where it writes",
    )

    n.step("Read-your-writes: a client that wrote reads the primary for a while")
    scope = f"lab:{time.time_ns()}"
    before = replica.written_recently(scope)
    replica.mark_written(scope)
    after = replica.written_recently(scope)
    n.say(f"    -> written_recently({scope!r}): {before} before, {after} after")
    if before:
        n.say("    (the cache did not answer: every scope counts as written)")
    n.expect(
        after,
        f"after mark_written() the scope reads the primary, for "
        f"READ_YOUR_WRITES_SECONDS ({window:g} s); the marker then expires",
    )
