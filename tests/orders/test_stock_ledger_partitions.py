"""The stock ledger's monthly partitions (orders/partitions.py, chapter 15).

Partitions are DDL, which a transactional test's flush does not undo: each
test here detaches and drops the months it made (and whatever it archived)
when it ends, and leaves the months the migration made.
"""

import json
import threading
from datetime import UTC, date, datetime

import pytest
from django.db import OperationalError, connection, connections, transaction

from orders.partitions import (
    months_before,
    stock_ledger_maintain,
    stock_ledger_partitions,
)
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

LEDGER = "orders_stock_movement"
NOW = datetime.now(UTC)
THIS_MONTH = NOW.date().replace(day=1)


def since(month: date) -> int:
    """The retention, in months, that keeps `month` and every month after it."""
    return (THIS_MONTH.year - month.year) * 12 + THIS_MONTH.month - month.month


def partition(month: date) -> str:
    return f"{LEDGER}_y{month.year:04d}m{month.month:02d}"


def partitions() -> list[str]:
    return [row["partition"] for row in stock_ledger_partitions()]


def owner_sql(sql: str, params=None):
    with connections["owner"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def ensure(first: date, last: date) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT orders_stock_ledger_partitions_ensure(%s, %s)", [first, last]
        )
        return cursor.fetchone()[0]


def movement_at(level_id: int, at: datetime, order_id: int | None = None) -> None:
    """A ledger row dated `at`, written through the parent as the owner would."""
    owner_sql(
        f"INSERT INTO {LEDGER} (stock_level_id, on_hand_delta, reserved_delta,"
        " reason, order_id, created_at) VALUES (%s, 1, 0, 'test', %s, %s)",
        [level_id, order_id, at],
    )


def where_rows_are(level_id: int) -> dict[str, int]:
    rows = owner_sql(
        f"SELECT tableoid::regclass::text, count(*) FROM {LEDGER}"
        " WHERE stock_level_id = %s GROUP BY 1",
        [level_id],
    )
    return dict(rows)


@pytest.fixture(autouse=True)
def months_made_here_are_dropped():
    """Drop the partitions and archived tables a test made; keep the migration's."""
    before = set(partitions())
    yield
    for name in set(partitions()) - before:
        owner_sql(f'ALTER TABLE {LEDGER} DETACH PARTITION "{name}"')
        owner_sql(f'DROP TABLE "{name}"')
    for (name,) in owner_sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'orders_archive'"
    ):
        owner_sql(f'DROP TABLE orders_archive."{name}"')


def test_the_ledger_is_range_partitioned_by_created_at_with_months_ahead():
    ((strategy, key),) = owner_sql(
        "SELECT p.partstrat, pg_get_partkeydef(p.partrelid) FROM"
        " pg_partitioned_table AS p WHERE p.partrelid = %s::regclass",
        [LEDGER],
    )
    assert (strategy, key) == ("r", "RANGE (created_at)")
    stock_ledger_maintain()
    names = partitions()
    for ahead in range(0, 4):
        assert partition(months_before(THIS_MONTH, -ahead)) in names
    assert names[-1] == f"{LEDGER}_default"


def test_a_stock_change_lands_in_this_months_partition():
    stock_ledger_maintain()
    level = StockLevelFactory(quantity_on_hand=3)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_stock_level SET quantity_on_hand = 5 WHERE id = %s",
            [level.pk],
        )
    assert where_rows_are(level.pk) == {partition(THIS_MONTH): 2}


def plan(sql: str, params=None) -> dict:
    (rows,) = owner_sql("EXPLAIN (FORMAT JSON, COSTS OFF) " + sql, params)[0]
    return (rows if isinstance(rows, list) else json.loads(rows))[0]["Plan"]


def relations(node: dict) -> set[str]:
    found = {node["Relation Name"]} if "Relation Name" in node else set()
    for child in node.get("Plans", []):
        found |= relations(child)
    return found


def test_a_query_on_a_span_reads_only_the_months_in_it():
    ensure(date(2024, 1, 1), date(2024, 4, 1))
    level = StockLevelFactory(quantity_on_hand=0)
    scanned = relations(
        plan(
            f"SELECT * FROM {LEDGER} WHERE stock_level_id = %s"
            " AND created_at >= '2024-02-01 00:00+00'"
            " AND created_at < '2024-04-01 00:00+00'",
            [level.pk],
        )
    )
    assert scanned == {partition(date(2024, 2, 1)), partition(date(2024, 3, 1))}
    everything = relations(plan(f"SELECT count(*) FROM {LEDGER}"))
    assert len(everything) == len(partitions())


def test_a_generic_plan_prunes_when_it_runs():
    """A prepared statement's generic plan cannot prune while planning (it
    does not know the month yet); the executor prunes at startup instead."""
    ensure(date(2024, 1, 1), date(2024, 3, 1))
    with transaction.atomic(using="owner"):
        owner_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        owner_sql(
            f"PREPARE ledger_month (timestamptz) AS SELECT count(*) FROM {LEDGER}"
            " WHERE created_at >= $1 AND created_at < $1 + interval '1 month'"
        )
        try:
            lines = owner_sql(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
                " EXECUTE ledger_month('2024-02-01 00:00+00')"
            )
        finally:
            owner_sql("DEALLOCATE ledger_month")
    text = "\n".join(line for (line,) in lines)
    assert "Subplans Removed:" in text
    assert partition(date(2024, 2, 1)) in text
    assert partition(date(2024, 1, 1)) not in text


def test_a_row_of_a_month_without_a_partition_waits_in_the_default_then_moves():
    level = StockLevelFactory(quantity_on_hand=0)
    future = datetime(2031, 5, 17, 12, tzinfo=UTC)
    movement_at(level.pk, future)  # no partition for May 2031: not an error
    assert where_rows_are(level.pk) == {f"{LEDGER}_default": 1}
    assert ensure(date(2031, 5, 1), date(2031, 5, 1)) == 1
    assert where_rows_are(level.pk) == {partition(date(2031, 5, 1)): 1}
    assert ensure(date(2031, 5, 1), date(2031, 5, 1)) == 0  # made once


def test_a_checkouts_movement_moves_out_of_the_default_despite_row_level_security():
    """ATTACH checks the moved rows' foreign keys in one query held to FORCE
    row-level security, which shows an owner acting for nobody no order: the
    function acts as a job for it, or this movement would "violate" its key."""
    level = StockLevelFactory(quantity_on_hand=0)
    order = OrderFactory()
    movement_at(level.pk, datetime(2031, 6, 3, tzinfo=UTC), order_id=order.pk)
    assert ensure(date(2031, 6, 1), date(2031, 6, 1)) == 1
    assert where_rows_are(level.pk) == {partition(date(2031, 6, 1)): 1}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.job', true)")
        assert cursor.fetchone()[0] in (None, "")  # the caller's context is back


def test_the_task_moves_rows_of_past_months_left_in_the_default():
    """The task was stopped past its months ahead: rows of a month that got
    no partition wait in the default, and the next run makes that month."""
    level = StockLevelFactory(quantity_on_hand=0)
    past = months_before(THIS_MONTH, 7)
    assert partition(past) not in partitions()
    movement_at(level.pk, datetime(past.year, past.month, 2, tzinfo=UTC))
    assert where_rows_are(level.pk) == {f"{LEDGER}_default": 1}
    assert stock_ledger_maintain().made == 1
    assert where_rows_are(level.pk) == {partition(past): 1}


def test_a_callers_temporary_table_cannot_stand_in_for_the_default():
    """The app may create temporary tables; the definer functions name every
    table with its schema and search pg_temp last, so a TEMP TABLE named
    like the default partition feeds nothing into the ledger."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {LEDGER}_default ON COMMIT DROP AS"
            f" SELECT * FROM {LEDGER} WITH NO DATA"
        )
        cursor.execute(
            f"INSERT INTO pg_temp.{LEDGER}_default (id, on_hand_delta,"
            " reserved_delta, reason, created_at, stock_level_id)"
            " VALUES (-1, 999, 0, 'forged', '2031-08-10 00:00+00', 1)"
        )
        cursor.execute(
            "SELECT orders_stock_ledger_partitions_ensure('2031-08-01', '2031-08-01')"
        )
    assert owner_sql(f"SELECT count(*) FROM {LEDGER} WHERE reason = 'forged'") == [(0,)]


@pytest.mark.parametrize(
    "call",
    [
        "orders_stock_ledger_partitions_detach(date_trunc('month', now())::date)",
        "orders_stock_ledger_partitions_detach('2100-01-01')",
        "orders_stock_ledger_partitions_ensure('1999-12-01', '2000-01-01')",
        "orders_stock_ledger_partitions_ensure('2030-01-01', '2090-01-01')",
    ],
)
def test_the_app_cannot_detach_recent_months_or_make_months_without_bound(call):
    """The bounds are the functions' own: the app's role can call them
    directly, around orders/partitions.py."""
    with (
        pytest.raises(Exception) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SELECT {call}")
    assert getattr(refused.value.__cause__, "sqlstate", None) == "22023"


def test_old_months_are_detached_into_the_archive_with_their_rows(settings):
    level = StockLevelFactory(quantity_on_hand=0)
    ensure(date(2020, 1, 1), date(2020, 3, 1))
    movement_at(level.pk, datetime(2020, 2, 10, tzinfo=UTC))
    movement_at(level.pk, datetime(2020, 3, 10, tzinfo=UTC))
    # Keep the months since March 2020: January and February leave.
    settings.STOCK_LEDGER_RETENTION_MONTHS = since(date(2020, 3, 1))
    result = stock_ledger_maintain()
    assert result.detached == [partition(date(2020, 1, 1)), partition(date(2020, 2, 1))]
    assert where_rows_are(level.pk) == {partition(date(2020, 3, 1)): 1}
    archived = owner_sql(
        f'SELECT count(*) FROM orders_archive."{partition(date(2020, 2, 1))}"'
    )
    assert archived == [(1,)]
    # No longer tied to the live tables: no foreign key, no trigger on them.
    keys = owner_sql(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        " AND conrelid = %s::regclass",
        [f"orders_archive.{partition(date(2020, 2, 1))}"],
    )
    assert keys == [(0,)]
    again = stock_ledger_maintain()
    assert (again.made, again.detached) == (0, [])


def test_the_app_reads_the_ledger_only_through_its_parent():
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {LEDGER}")
        with pytest.raises(Exception) as denied, transaction.atomic():
            cursor.execute(f'SELECT count(*) FROM "{partition(THIS_MONTH)}"')
    assert "permission denied" in str(denied.value)


def test_making_and_detaching_months_give_up_on_open_stock_writes_after_a_bound(
    settings,
):
    """Both wait for an open checkout, and each would make every later stock
    write queue behind it: ATTACH adds the new month's foreign keys, which
    locks catalog_stock_level and orders_order in SHARE ROW EXCLUSIVE mode
    (no writes), and DETACH locks the ledger ACCESS EXCLUSIVE. So the
    maintenance gives up after its lock_timeout, and the next run does the
    work once the writers are gone."""
    level = StockLevelFactory(quantity_on_hand=1)
    ensure(date(2020, 1, 1), date(2020, 1, 1))
    settings.STOCK_LEDGER_LOCK_TIMEOUT = "300ms"
    # Keep the months since January 2021: only January 2020 leaves (the
    # seed tests' months, 2023 on, stay where they are).
    settings.STOCK_LEDGER_RETENTION_MONTHS = since(date(2021, 1, 1))
    settings.STOCK_LEDGER_MONTHS_AHEAD = 12 * (2032 - THIS_MONTH.year)
    writing, done = threading.Event(), threading.Event()

    def open_writer():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE catalog_stock_level SET quantity_on_hand = 2 WHERE id = %s",
                    [level.pk],
                )
                writing.set()
                done.wait(30)
        finally:
            connection.close()

    writer = threading.Thread(target=open_writer)
    writer.start()
    try:
        assert writing.wait(10)
        with pytest.raises(OperationalError, match="lock timeout"):
            stock_ledger_maintain()  # the first month ahead it must make
        settings.STOCK_LEDGER_MONTHS_AHEAD = 3
        with pytest.raises(OperationalError, match="lock timeout"):
            stock_ledger_maintain()  # nothing to make: the detach waits
    finally:
        done.set()
        writer.join(30)
    settings.STOCK_LEDGER_MONTHS_AHEAD = 12 * (2032 - THIS_MONTH.year)
    result = stock_ledger_maintain()
    assert result.made > 0 and result.detached == [partition(date(2020, 1, 1))]
