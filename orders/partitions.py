"""The stock ledger's monthly partitions: made ahead, detached when old (chapter 15).

orders_stock_movement is range-partitioned by month of created_at
(orders/sql/partitions/stock_ledger_v01.sql says why this table). A beat
task keeps it so:

    ensure   every month from this one to STOCK_LEDGER_MONTHS_AHEAD ahead has
             its partition, made before the first row needs it. A row that
             still finds no month (the task stopped for months) lands in the
             default partition, and the next run moves it into its month:
             checkout never fails for want of a partition.
    detach   months older than STOCK_LEDGER_RETENTION_MONTHS leave the
             ledger for the schema orders_archive, whole, in one DDL
             statement each (no DELETE, nothing for vacuum).

Both are the owner's DDL, done by SECURITY DEFINER functions
(orders/sql/functions/stock_ledger_partitions_v01.sql) that the app may
call. Both wait for every open stock write, and while one waits, every
later stock write queues behind it: attaching a month adds its foreign
keys, which locks catalog_stock_level and orders_order in SHARE ROW
EXCLUSIVE mode, and detaching one locks the ledger ACCESS EXCLUSIVE. So
they run with a short lock_timeout: a busy moment makes the run fail
(tests/orders/test_stock_ledger_partitions.py shows it), and the next one (a
day later, or sooner by hand) does the work. Months are made three ahead
for that reason: a failed run costs nothing.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction

from shop.sql_files import read_sql

SQL = "orders/sql/queries/"


@dataclass(frozen=True)
class LedgerPartitions:
    made: int
    detached: list[str]


def month_start(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def months_before(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def stock_ledger_maintain(*, now: datetime | None = None) -> LedgerPartitions:
    """Make the months ahead, detach the months past retention; one transaction."""
    month = month_start(now or datetime.now(UTC))
    ahead = months_before(month, -settings.STOCK_LEDGER_MONTHS_AHEAD)
    keep = settings.STOCK_LEDGER_RETENTION_MONTHS
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            [settings.STOCK_LEDGER_LOCK_TIMEOUT],
        )
        cursor.execute(
            "SELECT orders_stock_ledger_partitions_ensure(%s, %s)", [month, ahead]
        )
        (made,) = cursor.fetchone()
        detached = []
        if keep:
            cursor.execute(
                "SELECT orders_stock_ledger_partitions_detach(%s)",
                [months_before(month, keep)],
            )
            detached = [name for (name,) in cursor.fetchall()]
    return LedgerPartitions(made=made, detached=detached)


def stock_ledger_partitions() -> list[dict]:
    """Each partition of the ledger, its range and its rows (staff, the lab)."""
    with connection.cursor() as cursor:
        cursor.execute(read_sql(SQL + "stock_ledger_partitions_v01.sql"))
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
