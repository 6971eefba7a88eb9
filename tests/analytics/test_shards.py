"""The order archive on two real shards (analytics/shards.py, chapter 15).

The shards are the clusters of `scripts/services.sh shards up`, which
`make services` (and so `make test`) starts. Without them these tests skip
and say why, except in CI (CI=true), where a missing shard fails them.

The module sets the archive up once in the test database (its own shard
databases, named after it) and tears it down at the end. Tests write through
their own connections, as shop_app, and commit: a shard sees a row only once
the primary has committed it. Each test's rows are deleted after it.
"""

import io
import os
import re
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from analytics import shards
from shop import lab
from shop.lab import LabFailed, connect
from shop.sql_files import read_sql

SHARD1, SHARD2 = shards.SHARDS
ARCHIVE_SQL = """
INSERT INTO shards.order_history (order_id, customer_id, status, total, created_at)
VALUES (%s, %s, 'paid', %s, now())
"""
SENT_SQL = """
SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query LIKE %s
"""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def database_name() -> str:
    return connections["owner"].settings_dict["NAME"]


@pytest.fixture(autouse=True)
def empty_outbox():
    """Nothing to empty: these tests write no outbox event and no Django table.

    Replaces tests/analytics/conftest.py's fixture, whose transactional
    database would flush every table after each test, for nothing: the
    tests work on their own connections (psycopg, not Django's), and the
    `app` fixture deletes the archive's rows.
    """


@pytest.fixture(scope="module")
def archive(django_db_setup):
    """The archive in the test database, on the running shards; gone afterwards."""
    try:
        shards.shards_check()
    except shards.ShardsUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI runs the sharding tests on real shards: {exc}")
        pytest.skip(f"sharding tests need the shards: {exc}")
    shards.shards_setup(using="owner")
    yield
    shards.shards_teardown(using="owner")


@pytest.fixture
def app(archive):
    """A connection as shop_app, autocommit; the archive emptied after the test."""
    with connect("default", autocommit=True) as conn:
        yield conn
        conn.execute("DELETE FROM shards.order_history")


@contextmanager
def on_shard(shard):
    with shards.shard_connect(shard, database_name()) as conn:
        yield conn


def shard_of(conn, customer: int) -> shards.Shard:
    """The shard PostgreSQL's hash partitioning sends `customer` to."""
    for shard in shards.SHARDS:
        (hit,) = conn.execute(
            "SELECT satisfies_hash_partition("
            "'shards.order_history'::regclass, %s, %s, %s::bigint)",
            [shards.MODULUS, shard.remainder, customer],
        ).fetchone()
        if hit:
            return shard
    raise AssertionError(f"no shard for customer {customer}")


def customers_by_shard(conn, customers) -> dict[shards.Shard, set[int]]:
    found = {shard: set() for shard in shards.SHARDS}
    for customer in customers:
        found[shard_of(conn, customer)].add(customer)
    return found


def one_customer_per_shard(conn) -> dict[shards.Shard, int]:
    by_shard = customers_by_shard(conn, range(1, 21))
    return {shard: min(customers) for shard, customers in by_shard.items()}


def sent(shard, prefix: str) -> int:
    """How many statements starting with `prefix` the shard has run, in all."""
    with on_shard(shard) as conn:
        return conn.execute(SENT_SQL, [prefix]).fetchone()[0]


def rows_on(shard, order_ids) -> set[int]:
    with on_shard(shard) as conn:
        rows = conn.execute(
            "SELECT order_id FROM order_history WHERE order_id = ANY (%s)",
            [list(order_ids)],
        ).fetchall()
    return {order_id for (order_id,) in rows}


def plan(conn, sql: str, params=None) -> list[str]:
    return [row[0] for row in conn.execute("EXPLAIN (VERBOSE) " + sql, params)]


def partitions(conn) -> list[str]:
    """The archive's foreign partitions, as analytics/shards.py lists them."""
    rows = conn.execute(read_sql(shards.SQL_DIR + "archive_partitions_v01.sql"))
    return [row[0] for row in rows]


def remote_sql(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if "Remote SQL:" in line]


def test_each_row_goes_to_the_shard_its_customer_hashes_to(app):
    customers = range(1, 21)
    app.execute(
        "INSERT INTO shards.order_history "
        "SELECT g, 1 + mod(g, 20), 'paid', 10, now() FROM generate_series(1, 200) AS g"
    )

    expected = customers_by_shard(app, customers)
    for shard in shards.SHARDS:
        with on_shard(shard) as conn:
            found = {
                c for (c,) in conn.execute("SELECT customer_id FROM order_history")
            }
        assert found == expected[shard]
    assert all(expected.values()), "twenty customers fill both shards"


def test_a_routed_insert_reaches_each_shard_in_batches_of_100(app):
    before = {shard: sent(shard, "INSERT%") for shard in shards.SHARDS}

    app.execute(
        "INSERT INTO shards.order_history "
        "SELECT g, mod(g, 20), 'paid', 10, now() FROM generate_series(1, 1000) AS g"
    )

    for shard in shards.SHARDS:
        with on_shard(shard) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM order_history").fetchone()
        statements = sent(shard, "INSERT%") - before[shard]
        assert statements == -(-rows // 100), (shard.name, rows, statements)


def test_a_lookup_by_customer_goes_to_that_customers_shard_only(app):
    customer = 7
    app.execute(ARCHIVE_SQL, [1, customer, 10])
    home = shard_of(app, customer)
    other = next(shard for shard in shards.SHARDS if shard != home)
    lookup = "SELECT order_id FROM shards.order_history WHERE customer_id = %s"
    started = {shard: sent(shard, "START TRANSACTION%") for shard in shards.SHARDS}

    rows = app.execute(lookup, [customer]).fetchall()

    assert rows == [(1,)]
    assert sent(home, "START TRANSACTION%") - started[home] == 1
    assert sent(other, "START TRANSACTION%") - started[other] == 0
    scans = [line for line in plan(app, lookup, [customer]) if "Foreign Scan" in line]
    assert len(scans) == 1 and home.partition in scans[0]


def test_a_group_by_customer_is_pushed_down_to_each_shard(app):
    with app.cursor() as cursor:
        cursor.executemany(ARCHIVE_SQL, [(n, n % 5, n) for n in range(1, 51)])
    per_customer = (
        "SELECT customer_id, count(*), sum(total) FROM shards.order_history "
        "GROUP BY customer_id ORDER BY customer_id"
    )
    locally = app.execute(per_customer).fetchall()

    with app.transaction():
        app.execute("SET LOCAL enable_partitionwise_aggregate = on")
        remote = remote_sql(plan(app, per_customer))
        pushed = app.execute(per_customer).fetchall()

    assert len(remote) == 2
    assert all("GROUP BY" in line and "count(*)" in line for line in remote)
    assert pushed == locally
    assert [row[1] for row in pushed] == [10] * 5


def test_without_partitionwise_aggregation_every_row_comes_to_the_primary(app):
    per_customer = (
        "SELECT customer_id, count(*) FROM shards.order_history GROUP BY customer_id"
    )

    remote = remote_sql(plan(app, per_customer))

    assert remote and all("GROUP BY" not in line for line in remote)


def test_a_total_over_every_customer_is_aggregated_on_the_primary(app):
    with app.transaction():
        app.execute("SET LOCAL enable_partitionwise_aggregate = on")
        lines = plan(app, "SELECT count(*), sum(total) FROM shards.order_history")

    # A plain or a partial (per shard) aggregate, as the costs decide: on the
    # primary either way. PostgreSQL 15 pushes down no partial aggregate.
    assert "Aggregate" in lines[0]
    assert all("count(" not in line for line in remote_sql(lines))


def test_a_stable_function_in_the_where_clause_is_not_sent_to_the_shards(app):
    lines = plan(
        app,
        "SELECT order_id FROM shards.order_history "
        "WHERE created_at > now() - interval '1 day'",
    )

    assert all("now()" not in line for line in remote_sql(lines))
    assert any(line.strip().startswith("Filter:") and "now()" in line for line in lines)


def test_a_policy_on_the_request_context_is_checked_on_the_primary(app):
    customer = 3
    home = shard_of(app, customer)
    with connect("owner") as owner:
        # The shop's kind of policy (chapter 22), on the archive for this
        # transaction only; FORCE holds the owner to it too.
        owner.execute("ALTER TABLE shards.order_history ENABLE ROW LEVEL SECURITY")
        owner.execute("ALTER TABLE shards.order_history FORCE ROW LEVEL SECURITY")
        owner.execute(
            "CREATE POLICY archive_own_orders ON shards.order_history USING "
            "(customer_id = "
            "nullif(current_setting('app.customer_id', true), '')::bigint)"
        )
        owner.execute("SELECT set_config('app.customer_id', %s, true)", [str(customer)])
        lines = plan(owner, "SELECT count(*) FROM shards.order_history")
        owner.rollback()

    remote = remote_sql(lines)
    # Pruned to the customer's shard when the executor starts, but the
    # shard is asked for every row it has: current_setting() is not shipped.
    assert len(remote) == 1 and "WHERE" not in remote[0]
    assert any("current_setting" in line and "Filter" in line for line in lines)
    assert any(home.partition in line for line in lines)


def test_use_remote_estimate_asks_the_shard_at_every_planning(app):
    customer = 3
    with app.cursor() as cursor:
        cursor.executemany(ARCHIVE_SQL, [(n, customer, 10) for n in range(1, 41)])
    home = shard_of(app, customer)
    with on_shard(home) as conn:
        conn.execute("ANALYZE order_history")
    lookup = "SELECT * FROM shards.order_history WHERE customer_id = %s"

    with connect("owner") as owner:
        before = sent(home, "EXPLAIN%")
        guess = plan(owner, lookup, [customer])[0]
        after_guess = sent(home, "EXPLAIN%")
        owner.execute(
            f"ALTER FOREIGN TABLE shards.{home.partition} "
            "OPTIONS (ADD use_remote_estimate 'true')"
        )
        asked = plan(owner, lookup, [customer])[0]
        after_asking = sent(home, "EXPLAIN%")
        owner.rollback()

    assert after_guess == before
    assert after_asking - after_guess >= 1
    assert "rows=40 " in asked
    assert "rows=40 " not in guess


def refused_commit(app, *, refusing, order_id) -> None:
    """Write an order to each shard, in SHARDS order; `refusing` refuses its COMMIT.

    The writes come in the same order whichever shard refuses: the order in
    which postgres_fdw commits the shards may depend on it.
    """
    customer = one_customer_per_shard(app)
    with connect("default") as conn:
        for shard in shards.SHARDS:
            conn.execute(ARCHIVE_SQL, [order_id + shard.remainder, customer[shard], 10])
            if shard == refusing:
                # The same key again: the shard checks it at its COMMIT only.
                conn.execute(
                    ARCHIVE_SQL, [order_id + shard.remainder, customer[shard], 20]
                )
        with pytest.raises(psycopg.errors.UniqueViolation) as error:
            conn.commit()
    assert "remote SQL command: COMMIT TRANSACTION" in str(error.value.diag.context)
    assert rows_on(refusing, [order_id + refusing.remainder]) == set()


def test_a_refused_remote_commit_can_leave_the_other_shards_rows_committed(app):
    refused_commit(app, refusing=SHARD1, order_id=100)
    refused_commit(app, refusing=SHARD2, order_id=200)

    left_behind = [rows_on(SHARD2, [101]), rows_on(SHARD1, [200])]

    # One shard after the other: a refusal from the shard committed first
    # rolls the second back; one from the second comes too late for the first.
    assert sorted(map(len, left_behind)) == [0, 1]


@pytest.fixture
def parallel_commit(archive):
    """The servers with parallel_commit on, for one test."""
    port = int(connections["owner"].settings_dict["PORT"])
    with shards.superuser(
        port, database_name(), what="the primary", hint=shards.PRIMARY_HINT
    ) as conn:
        for shard in shards.SHARDS:
            conn.execute(
                f"ALTER SERVER {shard.server} OPTIONS (ADD parallel_commit 'true')"
            )
        try:
            yield
        finally:
            for shard in shards.SHARDS:
                conn.execute(
                    f"ALTER SERVER {shard.server} OPTIONS (DROP parallel_commit)"
                )


def test_with_parallel_commit_a_refusal_never_stops_the_other_shard(
    app, parallel_commit
):
    refused_commit(app, refusing=SHARD1, order_id=100)
    refused_commit(app, refusing=SHARD2, order_id=200)

    assert rows_on(SHARD2, [101]) == {101}
    assert rows_on(SHARD1, [200]) == {200}


def test_no_unique_index_spans_the_foreign_partitions(app):
    with (
        connect("owner", autocommit=True) as owner,
        pytest.raises(
            psycopg.errors.WrongObjectType, match="partitions that are foreign tables"
        ),
    ):
        owner.execute(
            "ALTER TABLE shards.order_history ADD PRIMARY KEY (customer_id, order_id)"
        )

    customer = one_customer_per_shard(app)
    app.execute(ARCHIVE_SQL, [1, customer[SHARD1], 10])
    app.execute(ARCHIVE_SQL, [1, customer[SHARD2], 10])
    rows = app.execute("SELECT count(*) FROM shards.order_history WHERE order_id = 1")
    assert rows.fetchone() == (2,)


def test_a_row_written_to_the_wrong_partition_is_kept_and_missed_by_lookups(app):
    customer = one_customer_per_shard(app)[SHARD2]
    with connect("owner", autocommit=True) as owner:
        owner.execute(
            f"INSERT INTO shards.{SHARD1.partition} VALUES (1, %s, 'paid', 10, now())",
            [customer],
        )

    by_customer = app.execute(
        "SELECT order_id FROM shards.order_history WHERE customer_id = %s",
        [customer],
    ).fetchall()
    assert by_customer == []
    assert rows_on(SHARD1, [1]) == {1}


def test_setup_again_keeps_the_rows_and_the_routing(app):
    customer = one_customer_per_shard(app)[SHARD2]
    app.execute(ARCHIVE_SQL, [1, customer, 10])

    done = shards.shards_setup(using="owner")

    assert not any("created database" in line for line in done)
    assert partitions(app) == [shard.partition for shard in shards.SHARDS]
    app.execute(ARCHIVE_SQL, [2, customer, 10])
    assert rows_on(SHARD2, [1, 2]) == {1, 2}
    assert rows_on(SHARD1, [1, 2]) == set()


def test_teardown_removes_the_archive_and_the_shard_databases(archive):
    database = database_name()
    with connect("default", autocommit=True) as app:
        try:
            shards.shards_teardown(using="owner")

            assert partitions(app) == []
            for shard in shards.SHARDS:
                with pytest.raises(shards.ShardsUnavailable, match=database):
                    shards.shard_connect(shard, database)
        finally:
            shards.shards_setup(using="owner")
        assert len(partitions(app)) == len(shards.SHARDS)


def test_no_migration_depends_on_the_shards():
    """The shop migrates and runs without shards: `shards setup` alone needs them."""
    root = Path(settings.BASE_DIR)
    apps = ("shop", "catalog", "orders", "analytics")
    migrations = [m for app in apps for m in (root / app).rglob("migrations/*.py")]
    assert migrations
    for migration in migrations:
        text = migration.read_text(encoding="utf-8")
        assert "postgres_fdw" not in text and "shards" not in text, migration


@pytest.fixture
def shards_down(monkeypatch):
    """Point the shards at a port nothing listens on, as if they were stopped."""
    closed = [shards.Shard(s.name, 1, s.remainder) for s in shards.SHARDS]
    monkeypatch.setattr(shards, "SHARDS", tuple(closed))


def test_without_shards_the_lab_and_the_command_say_how_to_start_them(
    django_db_setup, shards_down
):
    with pytest.raises(LabFailed, match=re.escape("scripts/services.sh shards up")):
        lab.run("sharding", out=io.StringIO())
    with pytest.raises(CommandError, match=re.escape("scripts/services.sh shards up")):
        call_command("shards", "setup", stdout=io.StringIO())
